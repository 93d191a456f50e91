// PaymentsContract: the messages of the payments service: its commands, the events it
// publishes (the money side of the order saga), and its results.

import Choreo

/// `Deposit` (POST /v1/accounts/{userId}/deposits).
public struct Deposit: CommandContract, Equatable {
    public var userId: String
    public var amountCents: Int

    public init(userId: String, amountCents: Int) {
        self.userId = userId
        self.amountCents = amountCents
    }
}

/// `GetAccount` (GET /v1/accounts/{userId}).
public struct GetAccount: CommandContract, Equatable {
    public var userId: String

    public init(userId: String) { self.userId = userId }
}

/// An account as the API shows it (the result of Deposit and GetAccount).
public struct Account: Codable, Sendable, Equatable {
    public var userId: String
    public var balanceCents: Int

    public init(userId: String, balanceCents: Int) {
        self.userId = userId
        self.balanceCents = balanceCents
    }
}

/// `FundsDeposited` on `payments.events`: the account after the deposit.
public struct FundsDeposited: EventContract, Equatable {
    public var userId: String
    public var balanceCents: Int

    public init(_ account: Account) {
        userId = account.userId
        balanceCents = account.balanceCents
    }
}

/// `PaymentSucceeded` on `payments.events`: the reserved total was charged; the priced lines
/// travel on to orders.
public struct PaymentSucceeded: EventContract, Equatable {
    public var orderId: String
    public var userId: String
    public var amountCents: Int
    public var lines: [OrderLine]

    public init(orderId: String, userId: String, amountCents: Int, lines: [OrderLine]) {
        self.orderId = orderId
        self.userId = userId
        self.amountCents = amountCents
        self.lines = lines
    }
}

/// `PaymentFailed` on `payments.events`: nothing was charged (insufficient funds, no account).
public struct PaymentFailed: EventContract, Equatable {
    public var orderId: String
    public var userId: String
    public var amountCents: Int
    public var lines: [OrderLine]
    public var reason: String

    public init(orderId: String, userId: String, amountCents: Int, lines: [OrderLine], reason: String) {
        self.orderId = orderId
        self.userId = userId
        self.amountCents = amountCents
        self.lines = lines
        self.reason = reason
    }
}

/// `PaymentRefunded` on `payments.events`: a cancelled order's charge went back to the account.
public struct PaymentRefunded: EventContract, Equatable {
    public var orderId: String
    public var userId: String
    public var amountCents: Int

    public init(orderId: String, userId: String, amountCents: Int) {
        self.orderId = orderId
        self.userId = userId
        self.amountCents = amountCents
    }
}
