// BuildFunctions: `swift package --allow-writing-to-package-directory build-functions [--debug]`
//
// Builds every dynamic-library product of the package (the Swift task plugins, such as `text`)
// and installs each built `.so` into <package>/functions/, where `fnhost serve` picks it up.
// The install is atomic (a temporary file in functions/, then rename), so a running fnhost never
// sees a half-written library.
import Foundation
import PackagePlugin

@main
struct BuildFunctions: CommandPlugin {
    func performCommand(context: PluginContext, arguments: [String]) async throws {
        var extractor = ArgumentExtractor(arguments)
        let debug = extractor.extractFlag(named: "debug") > 0
        if !extractor.remainingArguments.isEmpty {
            throw PluginError("unexpected arguments: \(extractor.remainingArguments.joined(separator: " ")); usage: build-functions [--debug]")
        }

        let products = context.package.products.compactMap { $0 as? LibraryProduct }.filter {
            if case .dynamic = $0.kind { return true } else { return false }
        }
        if products.isEmpty {
            print("build-functions: the package has no dynamic library products")
            return
        }

        let functions = context.package.directoryURL.appending(path: "functions")
        try FileManager.default.createDirectory(at: functions, withIntermediateDirectories: true)

        var parameters = PackageManager.BuildParameters(configuration: debug ? .debug : .release)
        parameters.logging = .concise
        for product in products {
            print("build-functions: building \(product.name) (\(debug ? "debug" : "release"))")
            let result = try packageManager.build(.product(product.name), parameters: parameters)
            guard result.succeeded else {
                print(result.logText)
                throw PluginError("building \(product.name) failed")
            }
            let libraries = result.builtArtifacts.filter { $0.kind == .dynamicLibrary }
            if libraries.isEmpty {
                throw PluginError("building \(product.name) produced no dynamic library")
            }
            for library in libraries {
                let destination = functions.appending(path: library.url.lastPathComponent)
                try install(library.url, at: destination)
                print("build-functions: installed \(destination.path)")
            }
        }
    }

    /// Copies `source` to a temporary file next to `destination`, then renames it over
    /// `destination`: rename(2) replaces the file atomically within one directory.
    private func install(_ source: URL, at destination: URL) throws {
        let temporary = destination.deletingLastPathComponent()
            .appending(path: ".\(destination.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
        try? FileManager.default.removeItem(at: temporary)
        try FileManager.default.copyItem(at: source, to: temporary)
        guard rename(temporary.path, destination.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw PluginError("cannot install \(destination.path): \(reason)")
        }
    }
}

/// A failure the plugin reports to the user.
struct PluginError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
