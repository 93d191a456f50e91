// ShopGraphQL: the seed's GraphQL gateway schema (user, users, order, userOrders; createUser,
// createOrder, addItemToOrder) served at POST /graphql. Queries ask the owning service;
// mutations submit the command and wait (bounded) for its result. Errors are GraphQL errors.

import Choreo
import Foundation
import Gateway
import GraphQL
import Graphiti
import HTTPTypes
import Hummingbird
import Orders
import ShopContracts

/// The GraphQL endpoint of the reference system, mounted on the gateway.
public struct ShopGraphQL: GatewayExtension {
    /// How long a mutation waits for its command's result.
    public var mutationWait: Double

    /// Creates the extension.
    public init(mutationWait: Double = 10) {
        self.mutationWait = mutationWait
    }

    /// Whether `topology` has the services the schema needs.
    public static func supports(_ topology: Topology) -> Bool {
        ["users", "orders"].allSatisfy { topology.service($0) != nil }
    }

    public func register(on router: RouterGroup<BasicRequestContext>, gateway: Gateway) {
        let api: ShopAPI
        do {
            api = try ShopAPI()
        } catch {
            preconditionFailure("the GraphQL schema does not build: \(error)")
        }
        let wait = mutationWait
        router.post("/graphql") { request, context in
            let buffer = try await request.body.collect(upTo: gateway.configuration.maxBodyBytes)
            let graphQLRequest: GraphQLRequest
            do {
                graphQLRequest = try JSONDecoder().decode(GraphQLRequest.self, from: Data(buffer: buffer))
            } catch {
                throw Problem(
                    .badRequest, "Malformed request",
                    detail: "send {\"query\": \"...\", \"variables\": {...}} as JSON")
            }
            let result = try await api.execute(
                request: graphQLRequest,
                context: ShopContext(gateway: gateway, traceparent: Gateway.traceparent(request), wait: wait))
            let encoder = GraphQLJSONEncoder()
            encoder.outputFormatting = .sortedKeys
            let body = try encoder.encode(result)
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
    }
}

/// What a resolver needs: the gateway to talk to the services, the request's trace.
struct ShopContext: Sendable {
    let gateway: Gateway
    let traceparent: String
    let wait: Double

    func service(_ name: String) throws -> ServiceDefinition {
        guard let service = gateway.topology.service(name) else { throw GraphQLError(message: "no service \(name)") }
        return service
    }

    /// Asks a query; `nil` when the service says not found.
    func ask<T: Decodable, Q: CommandContract>(_ query: Q, _ service: String, as: T.Type) async throws -> T? {
        let record = try await gateway.ask(
            Q.messageType, service: try self.service(service), data: try Self.json(query), traceparent: traceparent)
        return try Self.outcome(record, as: T.self, notFoundIsNil: true)
    }

    /// Submits a command and waits for its result.
    func execute<T: Decodable, C: CommandContract>(_ command: C, _ service: String, as: T.Type) async throws -> T {
        let record = try await gateway.execute(
            C.messageType, service: try self.service(service), data: try Self.json(command), wait: wait,
            traceparent: traceparent)
        guard record.status.isTerminal else {
            throw GraphQLError(
                message: "command \(record.id) is still \(record.status.rawValue); poll /v1/commands/\(record.id)")
        }
        guard let value = try Self.outcome(record, as: T.self, notFoundIsNil: false) else {
            throw GraphQLError(message: "command \(record.id) has no result")
        }
        return value
    }

    static func outcome<T: Decodable>(_ record: CommandRecord, as: T.Type, notFoundIsNil: Bool) throws -> T? {
        switch record.status {
        case .succeeded:
            return try JSONDecoder().decode(T.self, from: Data((record.result ?? "null").utf8))
        case .failed:
            let failure = try? JSONDecoder().decode(Failure.self, from: Data((record.error ?? "{}").utf8))
            if notFoundIsNil, failure?.code == "not_found" { return nil }
            throw GraphQLError(message: failure?.reason ?? "the command failed")
        default:
            throw GraphQLError(message: "command \(record.id) is \(record.status.rawValue)")
        }
    }

    struct Failure: Decodable {
        var code: String?
        var reason: String?
    }

    static func json<P: Encodable>(_ payload: P) throws -> String {
        String(decoding: try JSONEncoder().encode(payload), as: UTF8.self)
    }
}

/// The resolvers.
struct ShopResolver: Sendable {
    struct ByID: Codable { let id: String }
    struct ByUser: Codable { let userId: String }
    struct CreateUserArguments: Codable {
        let email: String
        let name: String
    }
    struct ItemInput: Codable, Sendable {
        let productId: String
        let quantity: Int
    }
    struct CreateOrderArguments: Codable {
        let userId: String
        let items: [ItemInput]?
        let checkout: Bool?
    }
    struct AddItemArguments: Codable {
        let orderId: String
        let productId: String
        let quantity: Int
    }
    struct OrderList: Codable { let orders: [Order] }

    func user(context: ShopContext, arguments: ByID) async throws -> User? {
        try await context.ask(GetUser(id: arguments.id), "users", as: User.self)
    }

    func users(context: ShopContext, arguments: NoArguments) async throws -> [User] {
        try await context.ask(ListUsers(limit: "500"), "users", as: UserPage.self)?.users ?? []
    }

    func order(context: ShopContext, arguments: ByID) async throws -> Order? {
        try await context.ask(GetOrder(id: arguments.id), "orders", as: Order.self)
    }

    func userOrders(context: ShopContext, arguments: ByUser) async throws -> [Order] {
        try await context.ask(ListUserOrders(id: arguments.userId), "orders", as: OrderList.self)?.orders ?? []
    }

    func createUser(context: ShopContext, arguments: CreateUserArguments) async throws -> User {
        try await context.execute(CreateUser(email: arguments.email, name: arguments.name), "users", as: User.self)
    }

    func createOrder(context: ShopContext, arguments: CreateOrderArguments) async throws -> Order {
        let items = (arguments.items ?? []).map { OrderItem(productId: $0.productId, quantity: $0.quantity) }
        return try await context.execute(
            PlaceOrder(userId: arguments.userId, items: items, checkout: arguments.checkout ?? true), "orders",
            as: Order.self)
    }

    func addItemToOrder(context: ShopContext, arguments: AddItemArguments) async throws -> Order {
        try await context.execute(
            AddItemToOrder(id: arguments.orderId, productId: arguments.productId, quantity: arguments.quantity),
            "orders", as: Order.self)
    }
}

/// The schema.
struct ShopAPI: API {
    let resolver = ShopResolver()
    let schema: Schema<ShopResolver, ShopContext>

    init() throws {
        schema = try Schema<ShopResolver, ShopContext> {
            Type(User.self, as: "User") {
                Field("id", at: \.id)
                Field("email", at: \.email)
                Field("name", at: \.name)
                Field("status", at: \.status)
                Field("createdAt", at: \.createdAt)
            }
            Type(OrderItem.self) {
                Field("productId", at: \.productId)
                Field("quantity", at: \.quantity)
            }
            Type(OrderLine.self) {
                Field("productId", at: \.productId)
                Field("quantity", at: \.quantity)
                Field("unitPriceCents", at: \.unitPriceCents)
            }
            Type(Order.self) {
                Field("id", at: \.id)
                Field("userId", at: \.userId)
                Field("status", at: \.status.rawValue)
                Field("items", at: \.items)
                Field("lines", at: \.lines)
                Field("totalCents", at: \.totalCents)
                Field("reason", at: \.reason)
                Field("version", at: \.version)
                Field("createdAt", at: \.createdAt)
                Field("updatedAt", at: \.updatedAt)
            }
            Input(ShopResolver.ItemInput.self, as: "OrderItemInput") {
                InputField("productId", at: \.productId)
                InputField("quantity", at: \.quantity)
            }
            Query {
                Field("user", at: ShopResolver.user) { Argument("id", at: \.id) }
                Field("users", at: ShopResolver.users)
                Field("order", at: ShopResolver.order) { Argument("id", at: \.id) }
                Field("userOrders", at: ShopResolver.userOrders) { Argument("userId", at: \.userId) }
            }
            Mutation {
                Field("createUser", at: ShopResolver.createUser) {
                    Argument("email", at: \.email)
                    Argument("name", at: \.name)
                }
                Field("createOrder", at: ShopResolver.createOrder) {
                    Argument("userId", at: \.userId)
                    Argument("items", at: \.items)
                    Argument("checkout", at: \.checkout)
                }
                Field("addItemToOrder", at: ShopResolver.addItemToOrder) {
                    Argument("orderId", at: \.orderId)
                    Argument("productId", at: \.productId)
                    Argument("quantity", at: \.quantity)
                }
            }
        }
    }
}
