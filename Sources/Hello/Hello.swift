// Hello: the README's example service, whole: one command, one event, one table.

import Choreo
import Postgres

/// `Greet` on `hello.commands` (POST /v1/greetings).
public struct Greet: CommandContract {
    public var name: String
    public init(name: String) { self.name = name }
}

/// `Greeted` on `hello.events`.
public struct Greeted: EventContract, Equatable {
    public var name: String
    public var greeting: String
    public init(name: String, greeting: String) { (self.name, self.greeting) = (name, greeting) }
}

public enum Hello {
    public static func service(name: String = "hello") -> Service {
        var service = Service(
            name: name,
            migrations: [
                Migration(
                    version: 1, name: "greetings",
                    sql: "CREATE TABLE greetings (id uuid PRIMARY KEY, name text NOT NULL)")
            ])
        service.on(Greet.self) { context, greet in
            try context.execute(
                "INSERT INTO greetings (id, name) VALUES ($1::uuid, $2)", [context.envelope.id, greet.name])
            let greeted = Greeted(name: greet.name, greeting: "Hello, \(greet.name)!")
            try context.publish(greeted)  // on hello.events, for any service that consumes it
            try context.succeed(greeted)  // the command's result, for the client
        }
        service.publishes(Greeted.self)
        return service
    }
}
