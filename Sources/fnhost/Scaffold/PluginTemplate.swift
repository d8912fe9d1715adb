/// The files `fnhost new` writes for a new plugin: a C source or a SwiftPM package, a Makefile
/// whose `make test` builds the plugin and calls its tasks through `fnhost call`, and whose
/// `make install` puts it into the functions directory atomically (write, then rename).
struct PluginTemplate {
    enum Language: String, CaseIterable {
        case c, swift
    }

    /// The plugin's name: a C identifier in lower case, also its task-name prefix and `libNAME.so`.
    let name: String
    let language: Language
    /// Absolute path of the fnhost executable the Makefile calls.
    let fnhost: String
    /// Where `make install` puts the plugin.
    let functionsDirectory: String
    /// The fnhost source tree (for the Swift package's FnHostKit dependency).
    let sourceRoot: String?

    /// Why a name is not usable, or nil.
    static func problem(with name: String) -> String? {
        guard let first = name.unicodeScalars.first, ("a"..."z").contains(first),
              name.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }),
              name.count <= 64 else {
            return "a plugin name is a lower-case C identifier (a-z, 0-9, _; starting with a letter), such as `imaging`"
        }
        return nil
    }

    /// Relative path -> content.
    var files: [(path: String, content: String)] {
        switch language {
        case .c: return [("\(name).c", cSource), ("Makefile", cMakefile), (".gitignore", "build/\n"), ("README.md", readme)]
        case .swift: return [("Package.swift", swiftPackage), ("Sources/\(swiftTypeName)/\(swiftTypeName).swift", swiftSource),
                             ("Makefile", swiftMakefile), (".gitignore", ".build/\nbuild/\n"), ("README.md", readme)]
        }
    }

    private var swiftTypeName: String {
        name.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    private var readme: String {
        """
        # \(name): an fnhost plugin

        ```sh
        make test      # builds build/lib\(name).so and calls its tasks with `fnhost call`
        make install   # puts it into \(functionsDirectory) (a running fnhost serve loads it at once)
        ```

        From Python:

        ```python
        app.send_task("\(name).add", args=[2, 3], queue="\(name).add").get()   # 5
        ```

        """
    }

    private var cSource: String {
        """
        /* \(name).c: an fnhost plugin (see plugin-abi.md). Build: make; test: make test. */
        #include <stdint.h>
        #include <string.h>

        #include "fnhost.h"

        static const fnhost_api *api;

        /* \(name).add: a plain C function; fnhost converts the arguments by its signature. */
        static int64_t add(int64_t a, int64_t b) { return a + b; }

        /* \(name).echo: a task that sees the call's JSON: returns its positional arguments. */
        static fnhost_status echo(fnhost_call *call, void *userdata) {
            (void)userdata;
            size_t len = 0;
            const char *args = api->args_json(call, &len);
            api->set_result_json(call, args, len);
            return FNHOST_OK;
        }

        int fnhost_plugin_init(const fnhost_api *host, fnhost_registry *registry) {
            if (host == NULL || host->abi_version < FNHOST_ABI_VERSION || host->struct_size < sizeof(fnhost_api))
                return 1;
            api = host;
            if (api->register_native(registry, "\(name).add", (void *)add, "i64(i64,i64)", NULL)) return 1;
            if (api->register_task(registry, "\(name).echo", echo, NULL, NULL)) return 1;
            return 0;
        }

        """
    }

    private var tests: String {
        """
        test: build/lib\(name).so
        \ttest "$$($(FNHOST) call --functions build \(name).add 2 3)" = "5"
        \ttest "$$($(FNHOST) call --functions build \(name).echo '"hi"' 7)" = '["hi",7]'
        \t@echo "\(name): all tests passed"

        install: build/lib\(name).so
        \tcp build/lib\(name).so $(FUNCTIONS)/.lib\(name).so.tmp
        \tmv -f $(FUNCTIONS)/.lib\(name).so.tmp $(FUNCTIONS)/lib\(name).so

        clean:
        \trm -rf build

        .PHONY: test install clean
        """
    }

    private var cMakefile: String {
        """
        # Builds, tests and installs the fnhost plugin \(name).
        FNHOST    ?= \(fnhost)
        FUNCTIONS ?= \(functionsDirectory)
        CC        ?= cc

        build/lib\(name).so: \(name).c
        \t@mkdir -p build
        \t$(CC) -O2 -Wall -Werror -shared -fPIC $$($(FNHOST) cflags) -o $@.tmp \(name).c
        \tmv -f $@.tmp $@

        \(tests)

        """
    }

    private var swiftPackage: String {
        let root = sourceRoot ?? "/path/to/fnhost"
        let identity = root.split(separator: "/").last.map(String.init) ?? "fnhost"
        return """
        // swift-tools-version:6.0
        // The fnhost plugin \(name), written with FnHostKit. Build and test: make test.
        import PackageDescription

        let package = Package(
            name: "\(name)",
            products: [.library(name: "\(name)", type: .dynamic, targets: ["\(swiftTypeName)"])],
            dependencies: [.package(path: "\(root)")],
            targets: [
                .target(name: "\(swiftTypeName)", dependencies: [.product(name: "FnHostKit", package: "\(identity)")]),
            ]
        )

        """
    }

    private var swiftSource: String {
        """
        // \(swiftTypeName).swift: the fnhost plugin \(name), written with FnHostKit.
        import FnHostKit

        /// Thrown by \(name).greet: the producer's `.get()` raises a class named `EmptyName`.
        struct EmptyName: Error, CustomStringConvertible {
            var description: String { "the name is empty" }
        }

        @_cdecl("fnhost_plugin_init")
        public func fnhostPluginInit(_ api: UnsafePointer<fnhost_api>?, _ registry: OpaquePointer?) -> Int32 {
            FnHostPlugin.initialize(api: api, registry: registry) { plugin in
                // Arguments are decoded by the closure's types; the result is encoded as JSON.
                try plugin.task("\(name).add") { (a: Int, b: Int) in a + b }
                try plugin.task("\(name).greet") { (who: String) throws in
                    guard !who.isEmpty else { throw EmptyName() }
                    return "hello, \\(who)"
                }
            }
        }

        """
    }

    private var swiftMakefile: String {
        """
        # Builds, tests and installs the fnhost plugin \(name).
        FNHOST    ?= \(fnhost)
        FUNCTIONS ?= \(functionsDirectory)
        SWIFT     ?= swift

        build/lib\(name).so: Package.swift $(wildcard Sources/*/*.swift)
        \t$(SWIFT) build --product \(name)
        \t@mkdir -p build
        \tcp "$$($(SWIFT) build --show-bin-path)/lib\(name).so" $@.tmp
        \tmv -f $@.tmp $@

        \(tests.replacingOccurrences(of: "\(name).echo '\"hi\"' 7)\" = '[\"hi\",7]'", with: "\(name).greet '\"fnhost\"')\" = '\"hello, fnhost\"'"))

        """
    }
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        var result = ""
        var rest = Substring(self)
        while let r = rest.firstRange(of: target) {
            result += rest[..<r.lowerBound] + replacement
            rest = rest[r.upperBound...]
        }
        return result + rest
    }
}
