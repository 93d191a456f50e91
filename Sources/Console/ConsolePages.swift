// ConsolePages: the console's server-rendered HTML (every untrusted text escaped): the layout,
// the overview, a service's dead letters (groups, filtered list, actions), one letter, an action's
// outcome, and a command with its saga timeline.

import Choreo
import Foundation
import Operations

/// HTML escaping of untrusted text (payloads, errors, names).
func escape(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.count)
    for character in text {
        switch character {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(character)
        }
    }
    return out
}

/// A coordinate or length as SVG writes it: whole numbers bare, others to one decimal.
func svgNumber(_ value: Double) -> String {
    value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
}

/// Percent-encoding for a path segment or query value.
func urlPart(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
}

func isoTime(_ milliseconds: Int64) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
}

func ago(_ milliseconds: Int64) -> String {
    let seconds = max(0, (Envelope.nowMilliseconds() - milliseconds) / 1000)
    if seconds < 60 { return "\(seconds)s ago" }
    if seconds < 3600 { return "\(seconds / 60)m ago" }
    if seconds < 86400 { return "\(seconds / 3600)h ago" }
    return "\(seconds / 86400)d ago"
}

enum ConsolePages {
    static func layout(_ title: String, session: ConsoleSession?, _ body: String) -> String {
        let user =
            session.map {
                "<span class=\"who\">\(escape($0.name))\($0.isAdmin ? " (admin)" : "")</span>"
            } ?? ""
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title)) · Choreo console</title>
            <link rel="stylesheet" href="/console/assets/console.css">
            <script src="/console/assets/console.js" defer></script>
            </head><body>
            <header><a class="brand" href="/console">Choreo</a> <nav><a href="/console">Overview</a>
            <form class="find" action="/console/commands" method="get"><input name="id" placeholder="command or correlation id" aria-label="command id"></form>
            </nav>\(user)</header>
            <main>
            \(body)
            </main></body></html>
            """
    }

    static func login(error: String?) -> String {
        layout(
            "Sign in", session: nil,
            """
            <h1>Sign in</h1>
            \(error.map { "<p class=\"problem\">\(escape($0))</p>" } ?? "")
            <form method="post" action="/console/login" class="card">
            <label>API key <input type="password" name="key" autocomplete="current-password" required autofocus></label>
            <button type="submit">Sign in</button>
            </form>
            <p class="hint">Viewing needs any API key; replay and purge need one with the <code>admin</code> scope.</p>
            """)
    }

    /// What the overview shows: a snapshot, the topology it maps, the recent history.
    struct OverviewView {
        let status: SystemStatus
        let topology: Topology
        let history: ConsoleHistory
    }

    /// The overview's live part (also served alone for the page's refresh): the summary, the
    /// topology map, the throughput chart and the table.
    static func overviewFragment(_ view: OverviewView) -> String {
        let status = view.status
        var rows = ""
        for service in status.services {
            let rates = service.streams.compactMap(\.perSecond)
            let rate = rates.reduce(0, +)
            let problem = !service.problems.isEmpty
            for (index, stream) in service.streams.enumerated() {
                let live = stream.consumers.filter(\.live).count
                let gone = stream.consumers.count - live
                rows += "<tr class=\"\(problem ? "bad" : "")\">"
                if index == 0 {
                    let span = service.streams.count
                    rows += """
                        <td rowspan="\(span)"><strong>\(escape(service.name))</strong>\(problem ? "<br><span class=\"problem\">" + service.problems.map(escape).joined(separator: "<br>") + "</span>" : "")</td>
                        <td rowspan="\(span)">\(service.liveProcesses) live / \(service.processes.count)</td>
                        """
                }
                rows += """
                    <td>\(escape(ConsoleMap.display(stream.stream)))</td><td class="num">\(stream.lag.map(String.init) ?? "?")</td>
                    <td class="num">\(stream.pending)</td><td class="num">\(stream.oldestPendingMs.map { "\($0 / 1000)s" } ?? "–")</td>
                    <td>\(live) live\(gone > 0 ? ", \(gone) gone" : "")\(stream.partition == nil ? "" : "<br><span class=\"owner\">owner " + escape(stream.owner ?? "none") + "</span>")</td>
                    """
                if index == 0 {
                    let span = service.streams.count
                    let shown = rates.isEmpty ? "measuring" : ConsoleMap.rate(rate)
                    rows += """
                        <td rowspan="\(span)" class="num"><a class="dead-count" data-service="\(escape(service.name))" href="/console/dead/\(urlPart(service.name))">\(service.deadLetters)</a>\(service.newDeadLetters > 0 ? " <span class=\"problem\">+\(service.newDeadLetters)</span>" : "")</td>
                        <td rowspan="\(span)" class="num scheduled" data-service="\(escape(service.name))">\(escape(scheduled(service, now: status.at)))</td>
                        <td rowspan="\(span)"><span class="rate" data-service="\(escape(service.name))" data-rate="\(rates.isEmpty ? "" : String(format: "%.1f", rate))">\(shown)</span>\(ConsoleChart.spark(view.history.serviceRates(service.name), service: service.name))</td>
                        """
                }
                rows += "</tr>\n"
            }
        }
        let problems = status.problems
        let series = view.topology.services.map { (name: $0.name, points: view.history.serviceRates($0.name)) }
        return """
            <p class="summary \(problems.isEmpty ? "good" : "bad")">\(problems.isEmpty ? "No problems" : "\(problems.count) problem(s)") · \(escape(status.gateway ?? "")) · updated \(escape(isoTime(status.at)))</p>
            <h2>Throughput, last \(ConsoleHistory.window / 60_000) minutes</h2>
            \(ConsoleChart.svg(series, now: status.at, window: ConsoleHistory.window))
            <details class="map" open><summary>Topology map: \(view.topology.services.count) services, \(ConsoleMap.streams(view.topology).count) streams</summary>
            <div class="map-scroll">\(ConsoleMap.svg(topology: view.topology, status: status, history: view.history))</div></details>
            <h2>Services</h2>
            <div class="scroll"><table class="overview">
            <thead><tr><th>Service</th><th>Processes</th><th>Stream</th><th>Lag</th><th>Pending</th><th>Oldest</th><th>Consumers</th><th>Dead</th><th>Scheduled</th><th>Throughput</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>
            """
    }

    /// A service's delayed messages: `3, next in 12 s`, `0`, or `–` when not counted.
    static func scheduled(_ service: SystemStatus.Service, now: Int64) -> String {
        guard let count = service.scheduled else { return "–" }
        guard count > 0, let next = service.nextDue else { return String(count) }
        let seconds = (next - now) / 1000
        return "\(count), next \(seconds <= 0 ? "due now" : "in \(seconds) s")"
    }

    static func overview(_ view: OverviewView, session: ConsoleSession) -> String {
        layout(
            "Overview", session: session,
            """
            <h1>Overview</h1>
            <div id="live" data-refresh="/console/fragment">\(overviewFragment(view))</div>
            """)
    }

    struct DeadView {
        let service: String
        let filter: DeadLetterFilter
        let groups: [DeadLetterGroup]
        let letters: [DeadLetter]
        let total: Int
        let csrf: String
        let isAdmin: Bool
    }

    static func filterFields(_ filter: DeadLetterFilter) -> String {
        """
        <input type="hidden" name="type" value="\(escape(filter.type ?? ""))">
        <input type="hidden" name="error" value="\(escape(filter.errorContains ?? ""))">
        <input type="hidden" name="stream" value="\(escape(filter.stream ?? ""))">
        """
    }

    static func actions(_ view: DeadView, label: String, entries: [String], all: Bool) -> String {
        guard view.isAdmin else { return "" }
        let hidden =
            entries.map { "<input type=\"hidden\" name=\"entry\" value=\"\(escape($0))\">" }.joined()
            + (all ? "<input type=\"hidden\" name=\"all\" value=\"1\">" + filterFields(view.filter) : "")
        let base = "/console/dead/\(urlPart(view.service))"
        return """
            <form method="post" action="\(base)/replay" class="inline" data-confirm="Replay \(escape(label))?">
            <input type="hidden" name="csrf" value="\(view.csrf)">\(hidden)<button class="replay">Replay</button></form>
            <form method="post" action="\(base)/purge" class="inline" data-confirm="Delete \(escape(label)) for good?">
            <input type="hidden" name="csrf" value="\(view.csrf)">\(hidden)<button class="danger">Purge</button></form>
            """
    }

    static func deadLetters(_ view: DeadView, session: ConsoleSession) -> String {
        var groups = ""
        for group in view.groups {
            var filter = view.filter
            filter.type = group.type
            let groupView = DeadView(
                service: view.service, filter: filter, groups: [], letters: [], total: 0, csrf: view.csrf,
                isAdmin: view.isAdmin)
            groups += """
                <tr><td class="num">\(group.count)</td><td>\(escape(group.type))</td><td class="error">\(escape(group.error))</td>
                <td>\(escape(ago(group.newestAt)))</td>
                <td><a href="/console/dead/\(urlPart(view.service))?type=\(urlPart(group.type))">show</a> \(actions(groupView, label: "every \(group.type) letter", entries: [], all: true))</td></tr>
                """
        }
        var rows = ""
        for letter in view.letters {
            rows += """
                <tr><td><a href="/console/dead/\(urlPart(view.service))/\(urlPart(letter.entry.id))">\(escape(letter.entry.id))</a></td>
                <td>\(escape(letter.stream))</td><td>\(escape(letter.type))</td><td class="num">\(letter.deliveryCount)</td>
                <td>\(escape(ago(letter.deadAtMilliseconds)))</td><td class="error">\(escape(String(letter.errorText.prefix(160))))</td>
                <td>\(actions(view, label: "letter \(letter.entry.id)", entries: [letter.entry.id], all: false))</td></tr>
                """
        }
        let filter = view.filter
        return layout(
            "Dead letters of \(view.service)", session: session,
            """
            <h1>Dead letters of \(escape(view.service)) <span class="count" id="dead-total">\(view.total)</span></h1>
            \(view.isAdmin ? "" : "<p class=\"hint\">Replay and purge need an API key with the admin scope.</p>")
            <h2>By type and error</h2>
            <div class="scroll"><table><thead><tr><th>Count</th><th>Type</th><th>Error</th><th>Newest</th><th></th></tr></thead>
            <tbody>\(groups.isEmpty ? "<tr><td colspan=\"5\">No dead letters.</td></tr>" : groups)</tbody></table></div>
            <h2>Letters</h2>
            <form method="get" class="filters">
            <input name="type" placeholder="type" value="\(escape(filter.type ?? ""))">
            <input name="error" placeholder="error contains" value="\(escape(filter.errorContains ?? ""))">
            <input name="stream" placeholder="original stream" value="\(escape(filter.stream ?? ""))">
            <button>Filter</button> \(actions(view, label: "every letter matching the filter", entries: [], all: true))
            </form>
            <div class="scroll"><table><thead><tr><th>Entry</th><th>From</th><th>Type</th><th>Deliveries</th><th>Dead</th><th>Error</th><th></th></tr></thead>
            <tbody>\(rows.isEmpty ? "<tr><td colspan=\"7\">None match.</td></tr>" : rows)</tbody></table></div>
            """)
    }

    static func letter(_ service: String, _ letter: DeadLetter, csrf: String, session: ConsoleSession) -> String {
        let data = letter.entry["data"] ?? ""
        var payload = data
        if let object = try? JSONSerialization.jsonObject(with: Data(data.utf8), options: [.fragmentsAllowed]),
            let pretty = try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed])
        {
            payload = String(decoding: pretty, as: UTF8.self)
        }
        let fields = letter.entry.fields.filter { $0.name != "data" }.map {
            "<tr><th>\(escape($0.name))</th><td>\(escape($0.value))</td></tr>"
        }.joined()
        let view = DeadView(
            service: service, filter: DeadLetterFilter(), groups: [], letters: [], total: 0, csrf: csrf,
            isAdmin: session.isAdmin)
        return layout(
            "Dead letter \(letter.entry.id)", session: session,
            """
            <h1>Dead letter <code>\(escape(letter.entry.id))</code></h1>
            <p><a href="/console/dead/\(urlPart(service))">All dead letters of \(escape(service))</a>\(letter.entry["correlation"].map { " · <a href=\"/console/commands/\(urlPart($0))\">its saga</a>" } ?? "")</p>
            <p class="error">\(escape(letter.errorText))</p>
            <p>Delivered \(letter.deliveryCount) time(s); dead \(escape(ago(letter.deadAtMilliseconds))) (\(escape(isoTime(letter.deadAtMilliseconds)))).</p>
            \(actions(view, label: "this letter", entries: [letter.entry.id], all: false))
            <h2>Payload</h2><pre>\(escape(payload))</pre>
            <h2>Fields</h2><table class="fields">\(fields)</table>
            """)
    }

    static func outcome(_ service: String, action: String, done: Int, failures: [String], session: ConsoleSession)
        -> String
    {
        layout(
            "\(action) done", session: session,
            """
            <h1>\(escape(action))</h1>
            <p class="summary \(failures.isEmpty ? "good" : "bad")" id="outcome">\(escape(action)): \(done) letter(s) \(action == "Replay" ? "replayed into \(service).commands" : "deleted")\(failures.isEmpty ? "" : ", \(failures.count) failed")</p>
            \(failures.map { "<p class=\"problem\">\(escape($0))</p>" }.joined())
            <p><a href="/console/dead/\(urlPart(service))">Back to the dead letters of \(escape(service))</a></p>
            """)
    }

    /// JSON text pretty-printed and wrapped; longer than a few lines, folded behind a summary.
    static func folded(_ text: String, what: String) -> String {
        var shown = text
        if let object = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]),
            let pretty = try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed])
        {
            shown = String(decoding: pretty, as: UTF8.self)
        }
        let lines = shown.split(separator: "\n", omittingEmptySubsequences: false).count
        guard lines > 12 || shown.count > 600 else { return "<pre class=\"wrap\">\(escape(shown))</pre>" }
        return """
            <details class="fold"><summary>\(escape(what)): \(text.utf8.count) bytes, \(lines) lines (show)</summary><pre class="wrap">\(escape(shown))</pre></details>
            """
    }

    static func command(_ id: String, trace: SagaTrace, session: ConsoleSession) -> String {
        var head = "<p>No command record for this id (expired, or a correlation id).</p>"
        if let command = trace.command {
            head = """
                <table class="fields">
                <tr><th>Type</th><td>\(escape(command["type"] ?? ""))</td></tr>
                <tr><th>Status</th><td class="status-\(escape(command["status"] ?? ""))">\(escape(command["status"] ?? ""))</td></tr>
                <tr><th>Submitted</th><td>\(escape(command["submittedAt"].flatMap { Int64($0) }.map(isoTime) ?? ""))</td></tr>
                <tr><th>Completed</th><td>\(escape(command["completedAt"].flatMap { Int64($0) }.map(isoTime) ?? "–"))</td></tr>
                \(command["result"].map { "<tr><th>Result</th><td>\(folded($0, what: "result"))</td></tr>" } ?? "")
                \(command["error"].map { "<tr><th>Error</th><td class=\"error\">\(escape($0))</td></tr>" } ?? "")
                </table>
                """
        }
        let start = trace.steps.first?.at ?? 0
        var items = ""
        for step in trace.steps {
            let handlings = step.handlings.map { handling in
                "<span class=\"outcome \(escape(handling.outcome.replacingOccurrences(of: " ", with: "-")))\">\(escape(handling.service)): \(escape(handling.outcome))\(handling.at.map { " +\($0 - step.at)ms" } ?? "")\(handling.error.map { " — " + escape(String($0.prefix(120))) } ?? "")</span>"
            }.joined(separator: " ")
            // A delayed message was scheduled at `at` and published when due: it shows at its due time.
            let shown = step.due ?? step.at
            let delayed =
                step.due.map {
                    " <span class=\"delayed\">delayed, due +\($0 - start) ms (scheduled at +\(step.at - start) ms)</span>"
                } ?? ""
            let deadline =
                step.deadlineAt.map { at in
                    let fired = trace.steps.contains { step in step.due.map { abs($0 - at) < 5000 } ?? false }
                    return
                        " <span class=\"deadline\">deadline \(escape(isoTime(at)))\(fired ? " (fired)" : Envelope.nowMilliseconds() < at ? " (pending)" : "")</span>"
                } ?? ""
            items += """
                <li><span class="at">+\(shown - start) ms</span> <strong>\(escape(step.type))</strong>\(step.replays > 0 ? " (replay \(step.replays))" : "")\(delayed)\(deadline)
                <span class="stream">\(escape(step.stream)) \(escape(step.entry))</span><br>\(handlings)</li>
                """
        }
        return layout(
            "Command \(id)", session: session,
            """
            <h1>Command <code>\(escape(id))</code></h1>
            \(head)
            <h2>Saga</h2>
            \(ConsoleWaterfall.svg(trace))
            <h2>Messages</h2>
            <ol class="timeline">\(items.isEmpty ? "<li>No messages with this correlation id in the streams.</li>" : items)</ol>
            """)
    }
}
