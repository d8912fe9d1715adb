import CeleryProtocol
import FnHostCore
import Logging

/// A v2 task message as a Python producer sends it, with `extra` headers set or replaced.
func taskMessage(id: String, task: String, args: JSON = [], _ extra: JSONObject = [:],
                 contentType: String = "application/json") throws -> TaskMessage {
    var headers: JSONObject = [
        "lang": "py", "task": .string(task), "id": .string(id), "shadow": nil, "eta": nil, "expires": nil,
        "group": nil, "group_index": nil, "retries": 0, "timelimit": [nil, nil], "root_id": .string(id),
        "parent_id": nil, "ignore_result": nil,
    ]
    for (key, value) in extra.entries { headers[key] = value }
    return try TaskMessage(headers: headers, contentType: contentType, contentEncoding: "utf-8",
                           body: TaskBody.encode(args: args), correlationId: id, replyTo: "reply")
}

/// The delivery a broker would hand over for `message`, fetched from `queue`.
func delivery(of message: TaskMessage, queue: String, tag: String = "tag-1") -> Delivery {
    let payload = RedisEnvelope.encode(message, queue: queue, deliveryTag: tag)
    return Delivery(queue: queue, tag: tag, source: queue, payload: payload, message: RedisEnvelope.decodeTask(payload).message)
}

func options(_ json: String) throws -> TaskOptions { try TaskOptions.parse(json: json) }

func quietLogger() -> Logger {
    var logger = Logger(label: "fnhost.tests")
    logger.logLevel = .critical
    return logger
}
