import ArgumentParser
import CeleryProtocol
import FnHostAMQP
import FnHostCore
import FnHostRedis
import Logging

/// `fnhost dlq list|replay|purge`: the dead-letter queue on the configured broker.
struct DeadLetters: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "Inspect, replay or purge the dead-letter queue (messages that could not run).",
        subcommands: [ListEntries.self, Replay.self, Purge.self])

    /// Where the broker is: `--broker`, else the environment, else the config file.
    struct BrokerOptions: ParsableArguments {
        @Option(name: .long, help: "Broker URL (redis://host:port/db or amqp://user:pass@host:port/vhost).")
        var broker: String?

        @Option(name: .long, help: "The config file (default: ./fnhost.yml when it exists).")
        var config: String?

        func connect() throws -> any DeadLetterStore {
            var plugins = PluginOptions()
            plugins.config = config
            let file = try plugins.loadConfigFile()
            let text = file.brokerURL(flag: broker)
            if AMQPURL.isAMQP(text) {
                do {
                    let url = try AMQPURL(text)
                    return AMQPBroker(settings: .init(url: url, tls: file.amqp.tls, heartbeat: 0, topology: file.amqp.topology),
                                      logger: Logger(label: "fnhost"))
                } catch {
                    throw FnHostError("\(error.description)")
                }
            }
            do {
                return RedisBroker(url: try RedisURL(text, tls: file.brokerUseSSL), logger: Logger(label: "fnhost"))
            } catch {
                throw FnHostError("\(error.description)")
            }
        }
    }

    struct ListEntries: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List dead letters, oldest first.")
        @OptionGroup var options: BrokerOptions
        @Flag(name: .long, help: "Print each stored entry as JSON (the original message included).")
        var json = false

        func run() throws {
            let entries = try options.connect().deadLetters()
            for (entry, raw) in entries {
                if json {
                    print(String(decoding: entry?.encoded() ?? raw, as: UTF8.self))
                } else if let e = entry {
                    print("\(e.id)  \(CeleryTime.isoformat(e.deadAt))  queue=\(e.queue)  task=\(e.task ?? "?")[\(e.taskId ?? "?")]  \(e.reason)")
                } else {
                    print("(unreadable entry)  \(String(decoding: raw.prefix(120), as: UTF8.self))")
                }
            }
            if !json { print("\(entries.count) dead letter\(entries.count == 1 ? "" : "s")") }
        }
    }

    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put dead letters back on their queues (all, or the IDs given), retries reset to 0.")
        @OptionGroup var options: BrokerOptions
        @Argument(help: "Entry ids from `fnhost dlq list` (default: all).")
        var ids: [String] = []

        func run() throws {
            let broker = try options.connect()
            let chosen = try select(broker.deadLetters(), ids)
            let replayed = try broker.replay(chosen)
            for id in replayed { print("replayed \(id)") }
            print("\(replayed.count) replayed")
        }
    }

    struct Purge: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete dead letters (all, or the IDs given).")
        @OptionGroup var options: BrokerOptions
        @Argument(help: "Entry ids from `fnhost dlq list` (default: all).")
        var ids: [String] = []

        func run() throws {
            let broker = try options.connect()
            let all = try broker.deadLetters()
            let raws = ids.isEmpty ? all.map(\.raw) : try select(all, ids).map(\.raw)
            print("\(try broker.purge(raws)) purged")
        }
    }

    /// The entries named by `ids` (all readable ones when empty); an unknown id is an error.
    static func select(_ all: [(entry: DeadLetter?, raw: [UInt8])], _ ids: [String]) throws -> [(entry: DeadLetter, raw: [UInt8])] {
        let readable = all.compactMap { item in item.entry.map { (entry: $0, raw: item.raw) } }
        guard !ids.isEmpty else { return readable }
        let missing = ids.filter { id in !readable.contains { $0.entry.id == id } }
        guard missing.isEmpty else { throw FnHostError("no dead letter with id \(missing.joined(separator: ", "))") }
        return readable.filter { ids.contains($0.entry.id) }
    }
}

private func select(_ all: [(entry: DeadLetter?, raw: [UInt8])], _ ids: [String]) throws -> [(entry: DeadLetter, raw: [UInt8])] {
    try DeadLetters.select(all, ids)
}
