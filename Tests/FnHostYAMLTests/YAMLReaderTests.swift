import CeleryProtocol
import FnHostYAML
import Testing

private func json(_ text: String) throws -> JSON? { try YAMLReader.read(text)?.json }

private func problem(_ text: String) -> YAMLReader.Error? {
    do {
        _ = try YAMLReader.read(text)
        return nil
    } catch {
        return error
    }
}

@Suite struct YAMLReaderTests {
    @Test func readsTheConfigurationExample() throws {
        let text = """
            # fnhost.yml
            broker_url: redis://127.0.0.1:6379/0
            result_backend: "redis://127.0.0.1:6379/1"
            worker_concurrency: 4
            task_queues: [celery, 'math']
            broker_transport_options: { visibility_timeout: 3600 }
            worker_max_memory_per_child: 200000   # KB of resident memory
            tasks:
              math.add: { queue: arith, concurrency: 2 }
              math.mul:
                rate_limit: 10/s
                acks_late: yes
            """
        let expected: JSON = .object([
            "broker_url": "redis://127.0.0.1:6379/0",
            "result_backend": "redis://127.0.0.1:6379/1",
            "worker_concurrency": 4,
            "task_queues": ["celery", "math"],
            "broker_transport_options": .object(["visibility_timeout": 3600]),
            "worker_max_memory_per_child": 200000,
            "tasks": .object([
                "math.add": .object(["queue": "arith", "concurrency": 2]),
                "math.mul": .object(["rate_limit": "10/s", "acks_late": true]),
            ]),
        ])
        #expect(try json(text) == expected)
    }

    @Test func resolvesPlainScalarsAsYAML11() throws {
        let cases: [(String, JSON)] = [
            ("~", .null), ("null", .null), ("", .null), ("NULL", .null),
            ("true", true), ("False", false), ("yes", true), ("off", false), ("ON", true),
            ("0", 0), ("-17", -17), ("+3", 3), ("1_000", 1000), ("0x1F", 31), ("0o17", 15), ("017", 15), ("0b101", 5),
            ("1:30", 90), ("9223372036854775807", .int(Int64.max)),
            ("1.5", 1.5), ("-2.", -2.0), (".5", 0.5), ("+.5", "+.5"), (".5e3", ".5e3"), (".5e+3", 500.0), ("1e3", 1000.0), ("6.02e+23", 6.02e23), ("08", 8.0),
            ("1.2.3", "1.2.3"), ("127.0.0.1", "127.0.0.1"), ("10/s", "10/s"), ("2001-12-14", "2001-12-14"),
            ("99999999999999999999", "99999999999999999999"), ("0x", "0x"), ("True1", "True1"),
        ]
        for (text, value) in cases {
            #expect(try json("v: \(text)") == .object(["v": value]), "v: \(text)")
        }
        #expect(try json("v: .inf") == .object(["v": .double(.infinity)]))
        #expect(try json("v: -.inf") == .object(["v": .double(-.infinity)]))
        guard case .object(let nan)? = try json("v: .nan"), case .double(let d)? = nan["v"] else { Issue.record("no .nan"); return }
        #expect(d.isNaN)
    }

    @Test func quotedAndBlockScalarsAreStrings() throws {
        #expect(try json(#"a: "3""#) == .object(["a": "3"]))
        #expect(try json("a: 'true'") == .object(["a": "true"]))
        #expect(try json("a: |\n  1\n") == .object(["a": "1\n"]))
    }

    @Test func doubleQuotedEscapes() throws {
        #expect(try json(#"a: "tab\there \"q\" \\ \u00e9 \x41 \U0001F600 \/""#) == .object(["a": "tab\there \"q\" \\ é A 😀 /"]))
        #expect(try json("a: \"one\n  two\n\n  three\"") == .object(["a": "one two\nthree"]))
        #expect(try json("a: \"joined\\\n  here\"") == .object(["a": "joinedhere"]))
        #expect(try json("a: \"joined\\\nhere\"\nb: 1") == .object(["a": "joinedhere", "b": 1]))
        #expect(problem("a: \"x\\\n")?.line == 1)
        #expect(problem(#"a: "\q""#)?.problem.contains("unknown escape") == true)
    }

    @Test func singleQuotes() throws {
        #expect(try json("a: 'it''s # not a comment'") == .object(["a": "it's # not a comment"]))
        #expect(try json("a: 'one\n  two'") == .object(["a": "one two"]))
    }

    @Test func plainScalarsFoldOverLinesAndStopAtComments() throws {
        #expect(try json("- a\n  - b") == ["a - b"])
        #expect(try json("a: one\n  two\n\n  three\nb: x # comment\n") == .object(["a": "one two\nthree", "b": "x"]))
        #expect(try json("a: x#y") == .object(["a": "x#y"]))
        #expect(try json("url: http://h:80/p?q=1") == .object(["url": "http://h:80/p?q=1"]))
    }

    @Test func blockScalars() throws {
        let text = """
            literal: |
              line 1
                indented
              line 3

            folded: >
              one
              two

              three
                kept
              four
            strip: |-
              x

            keep: |+
              y

            indicator: |2
                two more
            last: end
            """
        #expect(try json(text) == .object([
            "literal": "line 1\n  indented\nline 3\n",
            "folded": "one two\nthree\n  kept\nfour\n",
            "strip": "x",
            "keep": "y\n\n",
            "indicator": "  two more\n",
            "last": "end",
        ]))
    }

    @Test func sequencesAndCompactMappings() throws {
        let text = """
            queues:
            - a
            - b
            routes:
              - name: x
                queue: q1
              -   name: y
              - - nested
                - list
              -
                deep: 1
            empty:
            after: 1
            """
        #expect(try json(text) == .object([
            "queues": ["a", "b"],
            "routes": [.object(["name": "x", "queue": "q1"]), .object(["name": "y"]), ["nested", "list"], .object(["deep": 1])],
            "empty": .null,
            "after": 1,
        ]))
    }

    @Test func flowCollectionsOverSeveralLines() throws {
        let text = """
            tasks: {
              a: { symbol: hypot, signature: "f64(f64,f64)" },  # a comment
              b: [1, 2,
                  3],
              c: { },
              d: [],
              e:,
              f
            }
            """
        #expect(try json(text) == .object([
            "tasks": .object(["a": .object(["symbol": "hypot", "signature": "f64(f64,f64)"]), "b": [1, 2, 3], "c": .object([:]), "d": [], "e": .null, "f": .null]),
        ]))
        #expect(try json("a: [x: 1, y]") == .object(["a": [.object(["x": 1]), "y"]]))
        #expect(try json("a: {url: redis://h:1/0, s: void()}") == .object(["a": .object(["url": "redis://h:1/0", "s": "void()"])]))
    }

    @Test func documentsMarkersAndEmptyText() throws {
        #expect(try YAMLReader.read("") == nil)
        #expect(try YAMLReader.read("# only a comment\n\n") == nil)
        #expect(try YAMLReader.read("---\n") == nil)
        #expect(try json("---\na: 1\n...\n") == .object(["a": 1]))
        #expect(try json("--- [1, 2]") == [1, 2])
        #expect(try json("\u{FEFF}a: 1") == .object(["a": 1]))
        #expect(try json("a: 1\r\nb: \"x\r\n  y\"\r\n") == .object(["a": 1, "b": "x y"]))
        #expect(problem("a: 1\n---\nb: 2")?.problem.contains("several documents") == true)
    }

    @Test func keysMayBeQuotedAndKeepTheirOrder() throws {
        #expect(try json("\"has space\": 1\n'b': 2\nc d: 3") == .object(["has space": 1, "b": 2, "c d": 3]))
        guard case .mapping(let entries, _)? = try YAMLReader.read("z: 1\na: 2\nm: 3") else { Issue.record("not a mapping"); return }
        #expect(entries.map { $0.key.scalar?.text } == ["z", "a", "m"])
    }

    @Test func linesOfNodes() throws {
        let text = """
            library: libm.so.6

            tasks:
              # a comment
              math.hypot: { symbol: hypot }
              math.floor:
                symbol: floor
            """
        guard case .mapping(let top, let line)? = try YAMLReader.read(text) else { Issue.record("not a mapping"); return }
        #expect(line == 1)
        #expect(top[0].value.line == 1)
        #expect(top[1].key.line == 3)
        guard case .mapping(let tasks, let tasksLine) = top[1].value else { Issue.record("tasks not a mapping"); return }
        #expect(tasksLine == 5)
        #expect(tasks.map(\.key.line) == [5, 6])
        #expect(tasks[1].value.line == 7)
        guard case .mapping(let empty, _)? = try YAMLReader.read("a:\nb: 1"), case .scalar(let null) = empty[0].value else { return }
        #expect(null.line == 1)
    }

    @Test func duplicateKeysAreKeptForTheCallerToRefuse() throws {
        let node = try #require(try YAMLReader.read("a: 1\nb:\n  c: 1\n  c: 2\n"))
        #expect(node.firstDuplicateKey?.text == "c")
        #expect(node.firstDuplicateKey?.line == 4)
        #expect(try YAMLReader.read("a: [ {x: 1}, {x: 2} ]")?.firstDuplicateKey == nil)
    }

    @Test func unsupportedAndMalformedTextIsRefusedWithItsLine() throws {
        let cases: [(String, Int, String)] = [
            ("a: &anchor 1", 1, "anchors"),
            ("a: 1\nb: *anchor", 2, "aliases"),
            ("a: !!str 1", 1, "tags"),
            ("? a\n: 1", 1, "complex"),
            ("%YAML 1.2\n---\na: 1", 1, "directives"),
            ("a:\n\tb: 1", 2, "tab"),
            ("a: [1, 2\nb: 3", 1, "not closed"),
            ("a: { b: \"x\"\n  c: 1 }", 2, "expected `,`"),
            ("a: [1, 2", 1, "not closed"),
            ("a: {b: 1", 1, "not closed"),
            ("a: \"open\nb: 1", 1, "not closed"),
            ("a: 'open", 1, "not closed"),
            ("a: 1\n  b: 2", 2, "`: ` inside a plain value"),
            ("a: b: c", 1, "mapping cannot start"),
            ("a: - b", 1, "sequence cannot start"),
            ("a:\n  b: 1\n c: 2", 3, "indentation"),
            ("- a\nb: 1", 2, "unexpected content"),
            ("a: 1\n- b", 2, "`-` entry"),
            ("a: [1] x", 1, "after the value"),
            ("a: @x", 1, "cannot start with `@`"),
            ("a: |x\n  y", 1, "after a block scalar"),
            (String(repeating: "[", count: 100_000), 1, "nested more than 64"),
            (String(repeating: "- ", count: 1_000), 1, "nested more than 64"),
        ]
        for (text, line, words) in cases {
            let error = problem(text)
            #expect(error?.line == line, "\(text.debugDescription): \(String(describing: error))")
            #expect(error?.problem.contains(words) == true, "\(text.debugDescription): \(String(describing: error))")
        }
    }
}
