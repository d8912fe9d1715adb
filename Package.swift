// swift-tools-version:6.0
// fnhost: a Celery worker that runs native task plugins. See README.md and design.md.
import PackageDescription

let package = Package(
    name: "fnhost",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "fnhost", targets: ["fnhost"]),
        // The worker process the host starts for each plugin: small on purpose (no Foundation,
        // YAML, OpenSSL or broker clients), so N workers cost little memory.
        .executable(name: "fnhost-worker", targets: ["fnhost-worker"]),
        .library(name: "FnHostKit", targets: ["FnHostKit"]),
        // Example Swift plugin: `make functions` (or `swift package build-functions`) puts
        // libtext.so into functions/.
        .library(name: "text", type: .dynamic, targets: ["TextFunctions"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // The plugin contract, nothing else: include/fnhost.h.
        .target(name: "CFnHostABI"),

        // C helpers Swift cannot import directly (prctl, wait status macros); not the plugin ABI.
        .target(name: "CFnHostSupport"),

        // System libraries, each a module map over Debian's -dev package.
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CRabbitMQ", pkgConfig: "librabbitmq", providers: [.apt(["librabbitmq-dev"])]),
        .systemLibrary(name: "CFFI", pkgConfig: "libffi", providers: [.apt(["libffi-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),

        // Pure values and codecs of the Celery wire protocol; no I/O.
        .target(name: "CeleryProtocol"),

        // The YAML of fnhost.yml and plugin manifests, read without Foundation (so the host
        // does not load Foundation and ICU).
        .target(name: "FnHostYAML", dependencies: ["CeleryProtocol"]),

        // Broker / result backend seams, dispatcher, policies, outcome handling, in-memory broker.
        .target(
            name: "FnHostCore",
            dependencies: ["CeleryProtocol", "CFnHostSupport", .product(name: "Logging", package: "swift-log")]
        ),

        // kombu-compatible Redis broker and Celery's Redis result backend, over hiredis.
        .target(
            name: "FnHostRedis",
            dependencies: ["FnHostCore", "CeleryProtocol", "CHiredis", "COpenSSL", .product(name: "Logging", package: "swift-log")]
        ),

        // RabbitMQ broker and the rpc:// result backend, over librabbitmq-c.
        .target(
            name: "FnHostAMQP",
            dependencies: ["FnHostCore", "CeleryProtocol", "CRabbitMQ", .product(name: "Logging", package: "swift-log")]
        ),

        // Plugin loading (in worker processes only), the ABI table, libffi calls, task options.
        // Linked into fnhost-worker: no YAML, no OpenSSL (the host resolves manifests and copies).
        .target(name: "FnHostPlugins", dependencies: ["FnHostCore", "CeleryProtocol", "CFnHostABI", "CFFI"]),

        // The frames host and worker processes exchange over their socketpair.
        .target(name: "FnHostIPC", dependencies: ["FnHostCore", "CeleryProtocol"]),

        // A worker process's main loop: load one plugin, run tasks, send outcomes.
        .target(name: "FnHostWorker", dependencies: ["FnHostIPC", "FnHostPlugins", "FnHostCore", "CeleryProtocol", "CFnHostSupport"]),
        .executableTarget(name: "fnhost-worker", dependencies: ["FnHostWorker"]),

        // The host's side of worker processes: plugin files (manifests, trust, private copies),
        // posix_spawn, supervision, hot reload.
        .target(
            name: "FnHostPool",
            dependencies: ["FnHostCore", "FnHostPlugins", "FnHostIPC", "FnHostYAML", "CeleryProtocol", "CFnHostSupport", "COpenSSL",
                           .product(name: "Logging", package: "swift-log")]
        ),

        // Message signing: Celery's auth serializer (certificates, keys, RSA-PSS) over OpenSSL.
        .target(name: "FnHostSecurity", dependencies: ["FnHostCore", "CeleryProtocol", "COpenSSL"]),

        // Metric names, /metrics /healthz /readyz, Celery events, remote control (pidbox).
        .target(
            name: "FnHostObservability",
            dependencies: ["FnHostCore", "CeleryProtocol", .product(name: "Logging", package: "swift-log")]
        ),

        // A thin Swift layer over the C ABI for writing plugins in Swift.
        .target(name: "FnHostKit", dependencies: ["CFnHostABI"]),

        // The command-line tool: serve, list, call, cflags, routes; hidden `worker` subcommand.
        .executableTarget(
            name: "fnhost",
            dependencies: [
                "FnHostCore", "FnHostRedis", "FnHostAMQP", "FnHostPool", "FnHostPlugins", "FnHostIPC", "FnHostWorker", "FnHostObservability",
                "FnHostSecurity", "FnHostYAML", "CeleryProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Example plugin written in Swift with FnHostKit.
        // exports.map keeps every symbol but fnhost_plugin_init/fini private to libtext.so.
        .target(
            name: "TextFunctions", dependencies: ["FnHostKit"], path: "functions/src/text", exclude: ["exports.map"],
            linkerSettings: [.unsafeFlags(["-Xlinker", "--version-script=\(Context.packageDirectory)/functions/src/text/exports.map"])]
        ),

        // `swift package --allow-writing-to-package-directory build-functions`
        .plugin(
            name: "BuildFunctions",
            capability: .command(
                intent: .custom(verb: "build-functions", description: "Build every plugin product into functions/"),
                permissions: [.writeToPackageDirectory(reason: "Installs the built plugins into functions/")]
            )
        ),

        .testTarget(name: "CeleryProtocolTests", dependencies: ["CeleryProtocol"], resources: [.copy("Fixtures")]),
        .testTarget(name: "FnHostYAMLTests", dependencies: ["FnHostYAML", "CeleryProtocol"]),
        .testTarget(name: "FnHostCoreTests", dependencies: ["FnHostCore", "CeleryProtocol", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "FnHostPluginsTests", dependencies: ["FnHostPlugins", "FnHostCore", "CFFI", "CRabbitMQ", "CHiredis"]),
        .testTarget(name: "FnHostRedisTests", dependencies: ["FnHostRedis", "FnHostCore", "CHiredis"]),
        .testTarget(name: "FnHostAMQPTests", dependencies: ["FnHostAMQP", "CeleryProtocol", "CRabbitMQ", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "FnHostPoolTests", dependencies: ["FnHostPool", "FnHostPlugins", "FnHostIPC", "FnHostCore"]),
        .testTarget(name: "FnHostWorkerTests", dependencies: ["FnHostWorker"]),
        .testTarget(name: "FnHostSecurityTests", dependencies: ["FnHostSecurity", "FnHostCore", "CeleryProtocol"], resources: [.copy("Fixtures")]),
        .testTarget(name: "FnHostObservabilityTests", dependencies: ["FnHostObservability", "FnHostCore", "CeleryProtocol"]),
    ]
)

// Release builds of the host and its worker processes skip Swift's run-time exclusivity checks
// (a `swift_beginAccess` / `swift_endAccess` pair on each access to a class's stored property or
// a global): 8.6% of the host's instructions per task (docs/performance.md). Debug builds, which
// every unit and interop test runs, keep the checks. FnHostKit and the example plugins, which
// plugin authors build, keep the compiler's defaults.
let uncheckedExclusivityInRelease: Set<String> = [
    "CeleryProtocol", "FnHostYAML", "FnHostCore", "FnHostRedis", "FnHostAMQP", "FnHostPlugins", "FnHostIPC", "FnHostWorker",
    "fnhost-worker", "FnHostPool", "FnHostSecurity", "FnHostObservability", "fnhost",
]
for target in package.targets where uncheckedExclusivityInRelease.contains(target.name) {
    target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
}

// libFuzzer targets (`make fuzz`, Fuzz/README.md): declared only when FNHOST_FUZZ=1, so ordinary
// builds and `swift test` never see them; built with `--sanitize fuzzer` in .build/fuzz.
// One decoder per target: name, then the modules it needs.
if Context.environment["FNHOST_FUZZ"] == "1" {
    let fuzzTargets: [(name: String, dependencies: [Target.Dependency])] = [
        ("FuzzTaskMessage", ["CeleryProtocol"]),
        ("FuzzRedisEnvelope", ["CeleryProtocol"]),
        ("FuzzCanvasSignature", ["CeleryProtocol"]),
        ("FuzzPluginManifest", ["FnHostPool"]),
        ("FuzzFrame", ["FnHostIPC"]),
        ("FuzzSecurePayload", ["CeleryProtocol"]),
    ]
    for target in fuzzTargets {
        package.targets.append(.executableTarget(
            name: target.name, dependencies: target.dependencies, path: "Fuzz/\(target.name)",
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]))  // libFuzzer has the main function
    }
}
