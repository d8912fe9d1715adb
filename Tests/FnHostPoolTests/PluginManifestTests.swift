import CeleryProtocol
import FnHostPlugins
import FnHostPool
import Testing

@Suite struct PluginManifestTests {
    func parse(_ text: String) throws -> PluginManifest { try PluginManifest.parse(text, file: "libm.fnhost.yml") }

    func failure(_ text: String) -> PluginManifest.Error? {
        do {
            _ = try PluginManifest.parse(text, file: "libm.fnhost.yml")
            return nil
        } catch {
            return error
        }
    }

    @Test func parsesTheDocumentedExample() throws {
        let m = try parse("""
            library: libm.so.6          # a name the dynamic loader finds
            tasks:
              math.hypot: { symbol: hypot, signature: "f64(f64,f64)", queue: math }
              math.floor: { symbol: floor, signature: "f64(f64)" }
            """)
        #expect(m.library == "libm.so.6")
        #expect(!m.libraryIsPath)
        #expect(m.tasks.map(\.name) == ["math.hypot", "math.floor"])
        #expect(m.tasks[0].symbol == "hypot")
        #expect(m.tasks[0].signature == NativeSignature(returnType: .f64, argumentTypes: [.f64, .f64]))
        #expect(m.tasks[0].options == ["queue": "math"])
        #expect(m.tasks[0].line == 3)
        #expect(m.tasks[1].options == [:])
        #expect(m.tasks[1].line == 4)
    }

    @Test func takesTaskOptionsWithTheirYAMLTypes() throws {
        let m = try parse("""
            library: ./libfast.so
            tasks:
              fast.sum:
                symbol: fast_sum
                signature: i64(i64,i64)
                concurrency: 2
                time_limit: 1.5
                acks_late: false
                rate_limit: 10/s
            """)
        #expect(m.libraryIsPath)
        #expect(m.tasks[0].options == ["concurrency": .int(2), "time_limit": .double(1.5), "acks_late": .bool(false), "rate_limit": "10/s"])
    }

    @Test func badSignatureNamesFileLineAndProblem() throws {
        let e = try #require(failure("""
            library: libm.so.6
            tasks:
              math.pow: { symbol: pow, signature: "f64(f65,f64)" }
            """))
        #expect(e.line == 3)
        #expect(e.description.hasPrefix("libm.fnhost.yml:3: task math.pow: "))
        #expect(e.description.contains("unknown type \"f65\" for argument 1"))
    }

    @Test func unknownTaskKeyIsNamed() throws {
        let e = try #require(failure("""
            library: libm.so.6
            tasks:
              math.pow:
                symbol: pow
                signature: f64(f64,f64)
                retries: 3
            """))
        #expect(e.line == 6)
        #expect(e.description.contains("unknown key `retries`"))
    }

    @Test func badOptionValueIsNamed() throws {
        let e = try #require(failure("""
            library: libm.so.6
            tasks:
              math.pow: { symbol: pow, signature: "f64(f64,f64)", concurrency: lots }
            """))
        #expect(e.line == 3)
        #expect(e.description.contains("option 'concurrency'"))
    }

    @Test func missingSymbolOrSignatureIsReported() throws {
        let noSymbol = try #require(failure("""
            library: libm.so.6
            tasks:
              math.pow: { signature: "f64(f64,f64)" }
            """))
        #expect(noSymbol.description.contains("task math.pow: `symbol` is missing"))
        let noSignature = try #require(failure("""
            library: libm.so.6
            tasks:
              math.pow: { symbol: pow }
            """))
        #expect(noSignature.description.contains("task math.pow: `signature` is missing"))
    }

    @Test func missingLibraryOrTasksIsReported() throws {
        #expect(failure("tasks: { a: { symbol: a, signature: void() } }")?.description.contains("`library:` is missing") == true)
        #expect(failure("library: libm.so.6")?.description.contains("`tasks:` is missing") == true)
        #expect(failure("library: libm.so.6\ntasks: {}")?.line == 2)
        #expect(failure("library: libm.so.6\ntasks: [a, b]")?.description.contains("must map task names") == true)
    }

    @Test func unknownTopLevelKeyAndDuplicatesAreReported() throws {
        let unknown = try #require(failure("library: libm.so.6\nlibrary_path: /x\ntasks: { a: { symbol: a, signature: void() } }"))
        #expect(unknown.line == 2)
        #expect(unknown.description.contains("unknown key `library_path`"))
        let twice = try #require(failure("""
            library: libm.so.6
            tasks:
              a: { symbol: a, signature: void() }
              a: { symbol: b, signature: void() }
            """))
        #expect(twice.line == 4)
        #expect(twice.description.contains("task a appears twice"))
    }

    @Test func invalidYAMLCarriesTheLine() throws {
        let e = try #require(failure("library: libm.so.6\ntasks:\n  a: { symbol: a, signature: \"void()\"\n  b: 1\n"))
        #expect(e.line != nil)
        #expect(e.description.hasPrefix("libm.fnhost.yml:"))
        #expect(e.description.contains("invalid YAML"))
    }

    @Test func libraryMustBeAString() throws {
        #expect(failure("library: 3\ntasks: { a: { symbol: a, signature: void() } }")?.description.contains("`library` must be") == true)
        #expect(failure("library: [a]\ntasks: { a: { symbol: a, signature: void() } }")?.line == 1)
    }

    @Test func badTaskNameIsRefused() throws {
        let e = try #require(failure("library: libm.so.6\ntasks:\n  \"has space\": { symbol: a, signature: void() }"))
        #expect(e.line == 3)
        #expect(e.description.contains("no spaces"))
    }

    @Test func resolvedFormCarriesEverythingAWorkerNeeds() throws {
        let m = try parse("library: libm.so.6\ntasks:\n  math.pow: { symbol: pow, signature: \"f64(f64, f64)\", queue: m }\n")
        let json = try JSONParser.parse(ResolvedManifest.encode(m, file: "libm.fnhost.yml", library: "/private/abc-libm.so.6"))
        #expect(json["manifest"] == "libm.fnhost.yml")
        #expect(json["library"] == "/private/abc-libm.so.6")
        #expect(json["library_name"] == "libm.so.6")
        let task = try #require(json["tasks"]?[0])
        #expect(task["name"] == "math.pow")
        #expect(task["symbol"] == "pow")
        #expect(task["signature"] == "f64(f64,f64)")
        #expect(task["options"] == .object(["queue": "m"]))
        #expect(task["line"] == .int(3))
    }
}
