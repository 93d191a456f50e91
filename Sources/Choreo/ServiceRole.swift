// ServiceRole: provisions a service's own Postgres login role, allowed into its schema only
// (least privilege: a bug or a leaked password in one service cannot read another's data).

import Foundation
import Postgres

/// The login role named by a service's own Postgres URL (`DATABASE_URL_{NAME}`).
///
/// `choreo migrate`, connected as the schema owner, creates the role if needed, sets its
/// password from the URL, and grants it use of the service's schema and the data rights on
/// its tables and sequences, nothing else: it cannot create objects, and it has no
/// `USAGE` on any other service's schema, so a cross-schema read is `permission denied`.
public struct ServiceRole: Sendable, Equatable {
    /// The role (login) name.
    public var name: String
    /// Its password.
    public var password: String

    /// Creates a role description.
    public init(name: String, password: String) {
        self.name = name
        self.password = password
    }

    /// The user and password of a `postgres://user:password@host/db` URL.
    public init(url: String) throws {
        guard let components = URLComponents(string: url), let user = components.user, !user.isEmpty else {
            throw RoleError("the service's Postgres URL names no user")
        }
        guard let password = components.password, !password.isEmpty else {
            throw RoleError("the service's Postgres URL for role '\(user)' has no password")
        }
        self.init(
            name: user.removingPercentEncoding ?? user, password: password.removingPercentEncoding ?? password)
    }

    /// Creates or updates the role and grants it `schema` only. Idempotent, also for an owner
    /// that is not a superuser (a `CREATEROLE` login): an existing role is altered without the
    /// `SUPERUSER` attribute, which PostgreSQL 15 lets only a superuser name, and its password
    /// is set from the URL each time (so rotating it in the URL rotates it in Postgres).
    public func provision(schema: String, on connection: PostgresConnection) throws {
        let existing = try connection.query("SELECT rolsuper FROM pg_roles WHERE rolname = $1", [name]).first
        let sql: String
        if let existing {
            if try existing.decode(Bool.self, "rolsuper") {
                throw RoleError(
                    "role '\(name)' is a superuser; a service role must not be (ALTER ROLE it NOSUPERUSER as a "
                        + "superuser, or name another role in the service's URL)")
            }
            sql = "SELECT format('ALTER ROLE %I LOGIN NOCREATEDB NOCREATEROLE PASSWORD %L', $1::text, $2::text) AS sql"
        } else {
            sql =
                "SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L', $1::text, "
                + "$2::text) AS sql"
        }
        let statement = try connection.query(sql, [name, password])
        try connection.execute(try statement.first!.decode(String.self, "sql"))
        let role = try connection.query("SELECT quote_ident($1) AS role", [name]).first!.decode(String.self, "role")
        try connection.execute(
            """
            GRANT USAGE ON SCHEMA \(schema) TO \(role);
            GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA \(schema) TO \(role);
            GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA \(schema) TO \(role);
            ALTER DEFAULT PRIVILEGES IN SCHEMA \(schema) GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO \(role);
            ALTER DEFAULT PRIVILEGES IN SCHEMA \(schema) GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO \(role);
            ALTER ROLE \(role) SET search_path = \(schema), public;
            """)
    }

    /// Why a role cannot be provisioned.
    public struct RoleError: Error, CustomStringConvertible {
        /// What is wrong.
        public let description: String
        init(_ description: String) { self.description = description }
    }
}
