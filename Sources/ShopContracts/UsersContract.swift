// UsersContract: the messages of the users service: the commands it handles, the event it
// publishes, and the results it answers with. Defined here once; consumers import this module.

import Choreo

/// `CreateUser` (POST /v1/users): a new user whose id is the command id.
public struct CreateUser: CommandContract, Equatable {
    public var email: String
    public var name: String

    public init(email: String, name: String) {
        self.email = email
        self.name = name
    }
}

/// `GetUser` (GET /v1/users/{id}).
public struct GetUser: CommandContract, Equatable {
    public var id: String

    public init(id: String) { self.id = id }
}

/// `ListUsers` (GET /v1/users?limit=&after=): query-string values, so strings.
public struct ListUsers: CommandContract, Equatable {
    public var limit: String?
    public var after: String?

    public init(limit: String? = nil, after: String? = nil) {
        self.limit = limit
        self.after = after
    }
}

/// `UserCreated` on `users.events`: the event orders and payments build on.
public struct UserCreated: EventContract, Equatable {
    public var userId: String
    public var email: String
    public var name: String

    public init(userId: String, email: String, name: String) {
        self.userId = userId
        self.email = email
        self.name = name
    }
}

/// A user as the API shows it (the result of CreateUser and GetUser).
public struct User: Codable, Sendable, Equatable {
    public var id: String
    public var email: String
    public var name: String
    public var status: String
    public var createdAt: String

    public init(id: String, email: String, name: String, status: String, createdAt: String) {
        self.id = id
        self.email = email
        self.name = name
        self.status = status
        self.createdAt = createdAt
    }
}

/// The result of ListUsers: a page of users and the cursor of the next one.
public struct UserPage: Codable, Sendable, Equatable {
    public var users: [User]
    public var next: String?

    public init(users: [User], next: String?) {
        self.users = users
        self.next = next
    }
}
