// Users: the users service of the reference system. Creates users (email validated and unique,
// case-insensitively) and answers user queries. Publishes UserCreated on `users.events`.

import Choreo
import Foundation
import Postgres
import ShopContracts

/// The users service.
///
/// Messages it handles (on `users.commands`):
/// - `CreateUser {email, name}`: a new user whose id is the command id; a malformed or taken
///   email is a `failed` result (`invalid_email`, `duplicate_email`), not an error.
///   Publishes `UserCreated {userId, email, name}`.
/// - `GetUser {id}`: the user, or `not_found`.
/// - `ListUsers {limit?, after?}`: users by creation order, `{users, next}` (keyset paging).
public enum Users {
    /// The schema's migrations.
    public static let migrations = [
        Migration(
            version: 1, name: "users",
            sql: """
                CREATE TABLE users (
                    id uuid PRIMARY KEY,
                    email text NOT NULL,
                    name text NOT NULL,
                    status text NOT NULL DEFAULT 'active',
                    seq bigserial NOT NULL UNIQUE,
                    created_at timestamptz NOT NULL DEFAULT now()
                );
                CREATE UNIQUE INDEX users_email_lower ON users (lower(email));
                """)
    ]

    /// The service's code, under `name`.
    public static func service(name: String = "users") -> Service {
        var service = Service(name: name, migrations: migrations)
        service.on(CreateUser.self, create)
        service.on(GetUser.self) { context, query in
            let id = query.id
            guard UUID(uuidString: id) != nil, let user = try fetch(context, id: id) else {
                try context.reject("no user \(id)", code: "not_found")
                return
            }
            try context.succeed(user)
        }
        service.on(ListUsers.self) { context, page in
            let limit = min(max(Int(page.limit ?? "") ?? 50, 1), 500)
            let after = Int(page.after ?? "") ?? 0
            let rows = try context.query(
                "SELECT \(columns), seq FROM users WHERE seq > $1 ORDER BY seq LIMIT $2", [after, limit + 1])
            var users = try rows.rows.map(user)
            var next: String?
            if users.count > limit {
                users.removeLast()
                next = String(try rows.rows[limit - 1].decode(Int.self, "seq"))
            }
            try context.succeed(UserPage(users: users, next: next))
        }
        service.publishes(UserCreated.self)
        return service
    }

    static let columns =
        "id::text AS id, email, name, status, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS created_at"

    static func create(_ context: MessageContext, _ command: CreateUser) throws {
        let email = command.email.trimmingCharacters(in: .whitespaces)
        let name = command.name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard isValidEmail(email) else {
            try context.reject("'\(command.email)' is not a valid email address", code: "invalid_email")
            return
        }
        guard !name.isEmpty else {
            try context.reject("the name is empty", code: "invalid_name")
            return
        }
        let inserted = try context.query(
            """
            INSERT INTO users (id, email, name) VALUES ($1::uuid, $2, $3)
            ON CONFLICT DO NOTHING RETURNING \(columns)
            """, [context.envelope.id, email, name])
        guard let row = inserted.first else {
            try context.reject("a user with email '\(email)' already exists", code: "duplicate_email")
            return
        }
        let created = try user(row)
        try context.publish(UserCreated(userId: created.id, email: created.email, name: created.name))
        try context.succeed(created)
    }

    static func fetch(_ context: MessageContext, id: String) throws -> User? {
        try context.query("SELECT \(columns) FROM users WHERE id = $1::uuid", [id]).first.map(user)
    }

    static func user(_ row: PostgresRow) throws -> User {
        User(
            id: try row.decode(String.self, "id"), email: try row.decode(String.self, "email"),
            name: try row.decode(String.self, "name"), status: try row.decode(String.self, "status"),
            createdAt: try row.decode(String.self, "created_at"))
    }

    /// A practical email check: one `@`, a non-empty local part without spaces, a domain with
    /// a dot and no empty labels, at most 254 characters.
    public static func isValidEmail(_ email: String) -> Bool {
        guard email.count <= 254, !email.contains(where: { $0.isWhitespace || $0.isNewline }) else { return false }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].count <= 64 else { return false }
        let labels = parts[1].split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2, labels.allSatisfy({ !$0.isEmpty }) else { return false }
        return labels.allSatisfy { label in
            label.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" } && !label.hasPrefix("-")
                && !label.hasSuffix("-")
        }
    }
}
