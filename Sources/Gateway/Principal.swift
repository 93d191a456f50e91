// Principal: who a request acts for (the API key it was authenticated with), carried as a task
// local from AuthMiddleware to the handlers. Commands and Idempotency-Keys belong to the
// principal that submitted them.

/// The principal of the request being handled.
public enum Principal {
    /// The API key the current request was authenticated with; nil when authentication is off
    /// (development) or outside a request.
    @TaskLocal public static var current: APIKey?

    /// Whether `key` may read a command submitted by `owner`: its own, or any with the `admin`
    /// scope. With authentication off (`key` nil) everything is readable.
    static func mayRead(owner: String?, as key: APIKey?, authentication: Bool) -> Bool {
        guard authentication else { return true }
        guard let key else { return false }
        return key.isAdmin || owner == key.name
    }
}
