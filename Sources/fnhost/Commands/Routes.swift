import ArgumentParser
import CeleryProtocol

/// `fnhost routes`: a `task_routes` dict for Python producers, so `send_task(name)` reaches
/// each function's queue without naming it.
struct Routes: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the Celery task_routes dict for the loaded functions.",
        discussion: "In Python: app.conf.task_routes = <this output>")

    @OptionGroup var plugins: PluginOptions

    func run() throws {
        let session = try PluginSession(plugins)
        defer { session.close() }
        let routes = JSONObject(session.registry.sorted.map { (key: $0.name, value: JSON.object(["queue": .string($0.queue)])) })
        print(JSONWriter.string(.object(routes)))
    }
}
