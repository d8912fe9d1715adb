import CeleryProtocol
import FnHostObservability
import Testing

@Suite struct PythonReprTests {
    @Test func jsonValuesReadAsPythonRepr() throws {
        #expect(PythonRepr.of(5) == "5")
        #expect(PythonRepr.of(2.5) == "2.5")
        #expect(PythonRepr.of(nil) == "None")
        #expect(PythonRepr.of(true) == "True")
        #expect(PythonRepr.of("it's") == "\"it's\"")
        #expect(PythonRepr.of("a\nb") == "'a\\nb'")
        #expect(PythonRepr.of(["x", 1, [false]]) == "['x', 1, [False]]")
        #expect(PythonRepr.of(.object(["k": "v", "n": 1])) == "{'k': 'v', 'n': 1}")
        #expect(PythonRepr.result(Array("[1, 2]".utf8)) == "[1, 2]")
    }

    @Test func exceptionsReadAsTheirConstructorCall() {
        #expect(PythonRepr.exception(TaskException(type: "ZeroDivisionError", module: "builtins", message: "division by zero"))
                == "ZeroDivisionError('division by zero')")
    }
}
