import FnHostPool
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ResidentMemoryTests {
    @Test func statmSecondFieldIsResidentPages() {
        #expect(ResidentMemory.kilobytes(statm: Array("5432 1234 567 89 0 321 0\n".utf8), pageSize: 4096) == 4936)
        #expect(ResidentMemory.kilobytes(statm: Array("10 3 1 1 0 1 0".utf8), pageSize: 16384) == 48)
    }

    @Test func notAStatmFileIsUnknown() {
        #expect(ResidentMemory.kilobytes(statm: Array("".utf8), pageSize: 4096) == nil)
        #expect(ResidentMemory.kilobytes(statm: Array("12\n".utf8), pageSize: 4096) == nil)
        #expect(ResidentMemory.kilobytes(statm: Array("12 x 3".utf8), pageSize: 4096) == nil)
    }

    @Test func readsTheTestProcessItself() throws {
        let kb = try #require(ResidentMemory.kilobytes(of: getpid()))
        #expect(kb > 100)
    }

    @Test func aProcessThatIsGoneIsUnknown() {
        // Above the kernel's pid_max (at most 2^22), so never a live process.
        #expect(ResidentMemory.kilobytes(of: 1 << 23) == nil)
    }
}
