// `choreo acl [--apply]`: least-privilege Redis users for every service and the gateway, from the
// topology; users and passwords come from REDIS_URL_{SERVICE} and REDIS_URL_GATEWAY.

import ArgumentParser
import Choreo
import Foundation
import Operations
import Redis

struct ACLCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "acl",
        abstract: "Print (or --apply) a Redis ACL user per service and one for the gateway.",
        discussion: """
            Each service's user (REDIS_URL_{SERVICE}=redis://user:password@host) may touch only its \
            own streams, the streams it consumes and publishes, its heartbeats and the results; the \
            gateway's (REDIS_URL_GATEWAY) only the commands streams, results and its own keys, never \
            a dead stream. --apply runs ACL SETUSER with the admin REDIS_URL. Operators (dlq, status, \
            trace) keep the admin URL.
            """)

    @Flag(help: "Apply the users whose URL is set (a user and password each) to Redis.") var apply = false
    @OptionGroup var options: TopologyOptions

    func run() throws {
        let topology = try options.load()
        let environment = ProcessInfo.processInfo.environment
        var users: [(String, String?, [String])] = []
        for service in topology.services {
            let rules = RedisACL.serviceRules(service, topology: topology)
            users.append((Topology.redisURLVariable(service.name), service.redisURL, rules))
        }
        users.append(
            (RedisACL.gatewayURLVariable, environment[RedisACL.gatewayURLVariable], RedisACL.gatewayRules(topology)))
        let redis = apply ? try OperatorContext(options).redis : nil
        for (variable, url, rules) in users {
            var user = "<user of \(variable)>"
            var password: String?
            if let url {
                do {
                    (user, password) = try RedisACL.credentials(url)
                } catch {
                    throw Exit.usage("\(variable): \(error)")
                }
            }
            print("ACL SETUSER \(user) reset on >*** " + rules.joined(separator: " "))
            if let redis {
                guard let password else {
                    print("  skipped: \(variable) is not set, so that role keeps the shared REDIS_URL")
                    continue
                }
                do {
                    try RedisACL.apply(user: user, password: password, rules: rules, on: redis)
                } catch {
                    throw Exit.usage("cannot apply the ACL of \(user): \(error)")
                }
            }
        }
        if apply { print("applied the users of every URL set") }
    }
}
