import ArgumentParser

/// `fnhost`: a Celery worker that runs native task plugins.
@main
struct FnHost: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fnhost",
        abstract: "A Celery worker that runs native task plugins from a functions directory.",
        discussion: """
            Drop compiled plugins (*.so) into the functions directory, run `fnhost serve`, and call them by \
            name from any Celery producer: app.send_task("math.add", args=[2, 3], queue="math.add").
            """,
        subcommands: [Serve.self, List.self, Call.self, Routes.self, CFlags.self, DeadLetters.self, Reload.self, New.self, Worker.self],
        defaultSubcommand: nil
    )

    /// ArgumentParser's own `main`, with URL passwords masked in the process's command line
    /// once the arguments are parsed (`CommandLineSecrets`).
    static func main() {
        do {
            var command = try parseAsRoot()
            CommandLineSecrets.mask()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}
