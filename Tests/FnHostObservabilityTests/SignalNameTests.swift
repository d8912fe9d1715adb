import CeleryProtocol
import FnHostObservability
import Testing

@Suite struct SignalNameTests {
    @Test func celerysSignalNamesMapToNumbers() {
        #expect(RemoteControl.signal("SIGKILL") == 9)
        #expect(RemoteControl.signal("KILL") == 9)
        #expect(RemoteControl.signal(15) == 15)
        #expect(RemoteControl.signal(nil) == 15)
    }
}
