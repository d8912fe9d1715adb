import ArgumentParser
import FnHostCore

/// `fnhost list`: the loaded functions, their queues, kinds, options; then failed plugins.
struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the functions the plugins register, and plugins that failed.")

    @OptionGroup var plugins: PluginOptions

    @Flag(name: .long, help: "Also print every function's effective options.")
    var options = false

    func run() throws {
        let session = try PluginSession(plugins)
        defer { session.close() }
        let functions = session.registry.sorted
        let nameWidth = max(4, functions.map(\.name.count).max() ?? 0)
        let queueWidth = max(5, functions.map(\.queue.count).max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
        print("\(pad("NAME", nameWidth))  \(pad("QUEUE", queueWidth))  \(pad("KIND", 24))  PLUGIN")
        for f in functions {
            let kind: String
            switch f.kind {
            case .task: kind = "task"
            case .native(let signature): kind = "native \(signature)"
            }
            print("\(pad(f.name, nameWidth))  \(pad(f.queue, queueWidth))  \(pad(kind, 24))  \(f.plugin)")
            if options { print("    options: \(f.options.json.compactText)") }
        }
        for failure in session.registry.failures {
            print("failed: \(failure.plugin): \(failure.reason)")
        }
        // What the running `fnhost serve` of this directory serves (it may differ: a plugin
        // whose new version failed keeps its previous generation serving there).
        let file = try plugins.loadConfigFile()
        let pidFile = PidFile(stateDirectory: plugins.resolvedStateDirectory, functionsDirectory: try plugins.functionsDirectory(file))
        if let (pid, lines) = pidFile.readStatus() {
            print("host: fnhost serve (pid \(pid)) serves this directory")
            for line in lines { print("host: \(line)") }
        }
    }
}

import CeleryProtocol

extension JSON {
    var compactText: String { JSONWriter.string(self) }
}
