import Logging

extension Logger.Metadata {
    /// The keys every log line about one task carries (`--log-format json` writes them as
    /// fields): `task_name` and `task_id`, as in Celery's `name[id]`.
    public static func task(_ name: String, _ id: String) -> Logger.Metadata {
        ["task_name": .string(name), "task_id": .string(id)]
    }
}
