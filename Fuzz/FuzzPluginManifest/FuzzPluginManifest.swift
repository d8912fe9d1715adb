// libFuzzer target: the plugin manifest decoder (NAME.fnhost.yml). See Fuzz/README.md.
import FnHostPool

/// Parses the input as a manifest dropped into the functions directory. Any input may be
/// refused (with file:line: reason); none may trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPluginManifest(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = try? PluginManifest.parse(text, file: "fuzz.fnhost.yml")
    return 0
}
