import CeleryProtocol

/// Headers of a minimal valid v2 task message, to which a test adds or replaces keys.
func headers(id: String = "id-1", task: String = "tests.add", _ extra: JSONObject = [:]) -> JSONObject {
    var h: JSONObject = ["lang": "py", "task": .string(task), "id": .string(id), "retries": 0, "timelimit": [nil, nil]]
    for (key, value) in extra.entries { h[key] = value }
    return h
}

func jsonMessage(_ headers: JSONObject, body: [UInt8] = TaskBody.encode(args: [1, 2])) throws(MessageDecodingError) -> TaskMessage {
    try TaskMessage(headers: headers, contentType: "application/json", contentEncoding: "utf-8", body: body)
}
