import CeleryProtocol
import FnHostCore
import Testing

@Suite struct TaskOptionsTests {
    @Test(arguments: [nil, "", "  \n", "null", "{}"] as [String?])
    func emptyOptionsAreDefaults(text: String?) throws {
        let options = try TaskOptions.parse(json: text)
        #expect(options == TaskOptions())
        #expect(options.acksLate)
        #expect(options.maxRetries == 3)
        #expect(options.concurrency == nil)
    }

    /// Each key with a valid value, and what `json` reports for it afterwards.
    static let valid: [(key: String, value: String, expected: JSON)] = [
        ("queue", #""math""#, "math"),
        ("concurrency", "4", 4),
        ("concurrency", "2.0", 2),
        ("max_retries", "5", 5),
        ("max_retries", "0", 0),
        ("max_retries", "null", nil),
        ("default_retry_delay", "0", 0.0),
        ("default_retry_delay", "2.5", 2.5),
        ("autoretry", "true", true),
        ("retry_backoff", "true", 1.0),
        ("retry_backoff", "false", false),
        ("retry_backoff", "3", 3.0),
        ("retry_backoff_max", "60", 60.0),
        ("retry_jitter", "false", false),
        ("time_limit", "30", 30.0),
        ("time_limit", "null", nil),
        ("soft_time_limit", "0.5", 0.5),
        ("rate_limit", #""10/s""#, "10/s"),
        ("rate_limit", #""1.5/m""#, "1.5/m"),
        ("rate_limit", "5", "5.0/s"),
        ("rate_limit", "null", nil),
        ("acks_late", "false", false),
        ("reject_on_worker_lost", "true", true),
        ("ignore_result", "true", true),
    ]

    @Test(arguments: valid)
    func validValueIsAccepted(key: String, value: String, expected: JSON) throws {
        let options = try TaskOptions.parse(json: "{\"\(key)\": \(value)}")
        #expect(options.json[key] == expected)
    }

    static let invalid: [(key: String, value: String)] = [
        ("queue", #""""#), ("queue", "5"), ("queue", "null"), ("queue", "\"\(String(repeating: "q", count: 256))\""),
        ("concurrency", "0"), ("concurrency", "-1"), ("concurrency", "1.5"), ("concurrency", "10001"), ("concurrency", #""4""#),
        ("max_retries", "-1"), ("max_retries", "1.5"), ("max_retries", "true"),
        ("default_retry_delay", "-1"), ("default_retry_delay", "null"), ("default_retry_delay", "NaN"),
        ("autoretry", "1"), ("autoretry", "null"),
        ("retry_backoff", "0"), ("retry_backoff", #""yes""#), ("retry_backoff", "Infinity"),
        ("retry_backoff_max", "0"), ("retry_backoff_max", "null"),
        ("retry_jitter", #""false""#),
        ("time_limit", "0"), ("time_limit", "-5"), ("time_limit", #""30""#),
        ("soft_time_limit", "0"), ("soft_time_limit", "[]"),
        ("rate_limit", #""10/d""#), ("rate_limit", #""fast""#), ("rate_limit", #""0/s""#), ("rate_limit", "-1"), ("rate_limit", #""/s""#),
        ("acks_late", #""yes""#), ("reject_on_worker_lost", "0"), ("ignore_result", "null"),
    ]

    @Test(arguments: invalid)
    func invalidValueErrorNamesTheKey(key: String, value: String) {
        #expect {
            try TaskOptions.parse(json: "{\"\(key)\": \(value)}")
        } throws: { error in
            guard let error = error as? TaskOptions.Error else { return false }
            return error.key == key && error.description.contains("'\(key)'")
        }
    }

    @Test func unknownKeyErrorNamesTheKey() {
        #expect {
            try TaskOptions.parse(json: #"{"queue": "q", "retries_max": 3}"#)
        } throws: { error in
            guard let error = error as? TaskOptions.Error else { return false }
            return error.key == "retries_max" && error.description.contains("retries_max") && error.message.contains("unknown option")
        }
    }

    @Test func softLimitAboveHardLimitIsRefused() {
        #expect {
            try TaskOptions.parse(json: #"{"time_limit": 10, "soft_time_limit": 20}"#)
        } throws: { error in
            (error as? TaskOptions.Error)?.key == "soft_time_limit"
        }
        #expect(throws: Never.self) { try TaskOptions.parse(json: #"{"time_limit": 10, "soft_time_limit": 10}"#) }
    }

    @Test func retryBackoffTrueMeansOneSecond() throws {
        #expect(try TaskOptions.parse(json: #"{"retry_backoff": true}"#).retryBackoff == 1)
        #expect(try TaskOptions.parse(json: #"{"retry_backoff": false}"#).retryBackoff == nil)
    }

    @Test(arguments: ["{", "[1]", "\"queue\"", "{} {}"])
    func documentThatIsNotAnObjectIsRefused(text: String) {
        #expect {
            try TaskOptions.parse(json: text)
        } throws: { error in
            (error as? TaskOptions.Error)?.key == "options_json"
        }
    }

    @Test func memoryLimitTakesSizesWithUnitsOrKilobytes() throws {
        #expect(TaskOptions.parseSize("64MB") == 64 << 20)
        #expect(TaskOptions.parseSize("1 GiB") == 1 << 30)
        #expect(TaskOptions.parseSize("512k") == 512 << 10)
        #expect(TaskOptions.parseSize(.int(2048)) == 2048 << 10)
        #expect(TaskOptions.parseSize("lots") == nil)
        #expect(TaskOptions.parseSize("0MB") == nil)
        #expect(throws: TaskOptions.Error.self) { try TaskOptions.parse(json: #"{"memory_limit": "-1MB"}"#) }
    }

    @Test func everyKnownKeyIsParsedIntoTheStruct() throws {
        let options = try TaskOptions.parse(json: """
            {"queue": "q", "concurrency": 2, "max_retries": 7, "default_retry_delay": 1, "autoretry": true,
             "retry_backoff": 2, "retry_backoff_max": 30, "retry_jitter": false, "time_limit": 9, "soft_time_limit": 8,
             "rate_limit": "3/h", "acks_late": false, "reject_on_worker_lost": true, "ignore_result": true,
             "track_started": true, "memory_limit": "256MB"}
            """)
        #expect(options.queue == "q")
        #expect(options.concurrency == 2)
        #expect(options.maxRetries == 7)
        #expect(options.defaultRetryDelay == 1)
        #expect(options.autoretry)
        #expect(options.retryBackoff == 2)
        #expect(options.retryBackoffMax == 30)
        #expect(!options.retryJitter)
        #expect(options.timeLimit == 9)
        #expect(options.softTimeLimit == 8)
        #expect(options.rateLimit == "3/h")
        #expect(!options.acksLate)
        #expect(options.rejectOnWorkerLost)
        #expect(options.ignoreResult)
        #expect(options.trackStarted)
        #expect(options.memoryLimit == 256 << 20)
        #expect(Set(options.json.objectValue?.keys ?? []) == Set(TaskOptions.knownKeys))
    }
}
