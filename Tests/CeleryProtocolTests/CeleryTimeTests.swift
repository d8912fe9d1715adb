import CeleryProtocol
import Testing

@Suite struct CeleryTimeTests {
    // Reference epochs from `date -u -d 2026-11-25T00:17:12 +%s` = 1795565832.
    static let cases: [(text: String, epoch: Double)] = [
        ("2026-11-25T00:17:12.661751+00:00", 1_795_565_832.661751),
        ("2026-11-25T00:17:12.661751Z", 1_795_565_832.661751),
        ("2026-11-25T00:17:12+00:00", 1_795_565_832),
        ("2026-11-25T00:17:12", 1_795_565_832),
        ("2026-11-24T18:47:12.5-05:30", 1_795_565_832.5),
        ("2026-11-25T05:47:12+05:30", 1_795_565_832),
        ("2026-11-25 00:17:12.000001+00:00", 1_795_565_832.000001),
        ("1970-01-01T00:00:00+00:00", 0),
        ("2024-02-29T12:00:00Z", 1_709_208_000),
    ]

    @Test(arguments: cases)
    func parsesCeleryEtaWithOffset(text: String, epoch: Double) throws {
        let parsed = try #require(CeleryTime.parse(text))
        #expect(abs(parsed - epoch) < 1e-6)
    }

    @Test(arguments: ["", "tomorrow", "2026-11-25", "2026-11-25T00:17", "2026-11-25T00:17:12.", "2026-11-25T00:17:12+5",
                      "2026-13-01T00:00:00", "2026-11-25T24:00:00", "2026-11-25T00:17:12 ", "2026-11-25T00:17:12+00:00x"])
    func rejectsWhatIsNotAnIsoDateTime(text: String) {
        #expect(CeleryTime.parse(text) == nil)
    }

    @Test func isoformatMatchesPythonAwareUtc() {
        #expect(CeleryTime.isoformat(0) == "1970-01-01T00:00:00.000000+00:00")
        #expect(CeleryTime.isoformat(1_795_565_769.621219) == "2026-11-25T00:16:09.621219+00:00")
        #expect(CeleryTime.isoformat(1_709_208_000.5) == "2024-02-29T12:00:00.500000+00:00")
        #expect(CeleryTime.isoformat(-1.5) == "1969-12-31T23:59:58.500000+00:00")
        // Rounding that carries into the next second.
        #expect(CeleryTime.isoformat(9.9999996) == "1970-01-01T00:00:10.000000+00:00")
    }

    @Test(arguments: [0.0, 1.0, 1_795_565_832.661751, 1_709_208_000.000001, 951_782_400.25, 4_102_444_800.999999])
    func isoformatRoundTripsThroughParse(epoch: Double) throws {
        let text = CeleryTime.isoformat(epoch)
        let back = try #require(CeleryTime.parse(text))
        #expect(abs(back - epoch) < 1e-6)
        #expect(CeleryTime.isoformat(back) == text)
    }

    @Test(arguments: [Double.infinity, -Double.infinity, Double.nan, 1e300, -1e300, Double(Int64.max)])
    func isoformatOfAnyDoubleIsAParseableDateNotACrash(epoch: Double) throws {
        let text = CeleryTime.isoformat(epoch)
        let back = try #require(CeleryTime.parse(text), "\(text)")
        // Python's datetime range: years 1 to 9999.
        #expect(back >= -62_135_596_800 && back < 253_402_300_800)
    }
}
