import CeleryProtocol
import Testing

/// Signature decoding against messages a real Celery 5.7 producer put on Redis for each canvas
/// shape (captured by scripts/capture-canvas-fixtures.py into Fixtures/canvas_*.raw.jsonl).
@Suite struct CanvasSignatureTests {
    /// The messages of one capture, oldest first, with their decoded embeds.
    func captured(_ shape: String) throws -> [(message: TaskMessage, embed: CanvasEmbed)] {
        let bytes = try Fixture.bytes("canvas_\(shape).raw.jsonl")
        return try bytes.split(separator: UInt8(ascii: "\n")).map { line in
            let message = try RedisEnvelope(bytes: line).taskMessage()
            return (message, try CanvasEmbed(body: message.body))
        }
    }

    @Test func plainTaskHasAnEmptyEmbed() throws {
        let message = try RedisEnvelope(bytes: try Fixture.bytes(Fixture.taskEnvelope)).taskMessage()
        let embed = try CanvasEmbed(body: message.body)
        #expect(embed.isEmpty)
        #expect(embed.chain == nil)
    }

    @Test func chainOfThreeCarriesTheRemainingStepsInReverseWithFrozenIds() throws {
        let messages = try captured("chain3")
        try #require(messages.count == 1)
        let (message, embed) = messages[0]
        #expect(message.task == "math.add")
        let chain = try #require(embed.chain)
        #expect(chain.map(\.task) == ["math.mul", "math.mul"])
        // Reverse order: the next step (mul(3)) is the last element.
        #expect(chain.map(\.args) == [[2], [3]])
        #expect(chain.allSatisfy { $0.taskId != nil && $0.options["reply_to"]?.stringValue == message.replyTo })
        #expect(chain.allSatisfy { $0.immutable == false && $0.subtaskType == nil && $0.options["queue"] == nil })
        #expect(try chain[1].kind == .task)
        #expect(embed.callbacks.isEmpty && embed.errbacks.isEmpty && embed.chord == nil)
    }

    @Test func immutableStepSaysSo() throws {
        let embed = try captured("chain_immutable")[0].embed
        let next = try #require(embed.chain?.last)
        #expect(next.immutable)
        #expect(next.args == [5, 5])
    }

    @Test func oneLinkAndTwoLinksAreCallbacksWithoutIds() throws {
        let one = try captured("link_one")[0].embed
        #expect(one.callbacks.map(\.task) == ["math.mul"])
        #expect(one.callbacks[0].args == [10])
        #expect(one.callbacks[0].taskId == nil)
        let two = try captured("link_two")[0].embed
        #expect(two.callbacks.map(\.args) == [[2], [3]])
        #expect(two.chain == nil)
    }

    @Test func linkErrorIsAnErrback() throws {
        let (message, embed) = try captured("link_error")[0]
        #expect(message.task == "math.div")
        #expect(embed.errbacks.map(\.task) == ["errors.record"])
        #expect(embed.errbacks[0].args == ["extra"])
        #expect(embed.callbacks.isEmpty)
    }

    @Test func groupMembersCarryGroupHeadersAndNoEmbed() throws {
        let messages = try captured("group3")
        #expect(messages.count == 3)
        let groups = Set(messages.compactMap(\.message.group))
        #expect(groups.count == 1)
        #expect(messages.map(\.message.groupIndex) == [0, 1, 2])
        #expect(messages.allSatisfy { $0.embed.isEmpty })
    }

    @Test func chordHeaderMembersCarryTheBodyWithItsFrozenIdAndGroup() throws {
        let messages = try captured("chord3")
        #expect(messages.count == 3)
        let gid = try #require(messages[0].message.group)
        for (i, (message, embed)) in messages.enumerated() {
            #expect(message.group == gid)
            #expect(message.groupIndex == i)
            let body = try #require(embed.chord)
            #expect(body.task == "math.xsum")
            #expect(body.options["group_id"]?.stringValue == gid)
            #expect(body.taskId != nil)
        }
        #expect(Set(messages.compactMap(\.embed.chord?.taskId)).count == 1)
    }

    @Test func chainThenGroupThenTaskIsUpgradedToAChord() throws {
        let (_, embed) = try captured("chain_group_task")[0]
        let step = try #require(embed.chain?.last)
        #expect(step.task == "celery.chord")
        guard case .chord(let header, let headerOptions, let body) = try step.kind else {
            Issue.record("expected a chord, got \(try step.kind)")
            return
        }
        #expect(header.map(\.task) == ["math.mul", "math.mul"])
        #expect(header.map { $0.options["group_index"] } == [0, 1])
        #expect(headerOptions["task_id"]?.stringValue == step.taskId)
        #expect(body.task == "math.xsum")
        #expect(body.taskId != nil)
    }

    @Test func chainThenGroupKeepsTheGroup() throws {
        let step = try #require(try captured("chain_group")[0].embed.chain?.last)
        guard case .group(let members) = try step.kind else {
            Issue.record("expected a group")
            return
        }
        #expect(members.map(\.args) == [[2], [3]])
        #expect(step.taskId != nil)
    }

    @Test func groupOfChainsPutsGroupOptionsOnTheLastStep() throws {
        let messages = try captured("group_of_chains")
        #expect(messages.count == 2)
        let first = messages[0]
        #expect(first.message.group == nil)
        let last = try #require(first.embed.chain?.last)
        let gid = try #require(last.options["group_id"]?.stringValue)
        #expect(last.options["group_index"] == 0)
        #expect(messages[1].message.group == gid)
        #expect(messages[1].message.groupIndex == 1)
    }

    @Test func chordWithAChainBodyCarriesACeleryChain() throws {
        let messages = try captured("chord_chain_body")
        let body = try #require(messages[0].embed.chord)
        guard case .chain(let steps) = try body.kind else {
            Issue.record("expected a chain body")
            return
        }
        #expect(steps.map(\.task) == ["math.xsum", "math.mul"])
    }

    @Test func chainChordTaskPutsTheChordNextAndTheTaskAfter() throws {
        let chain = try #require(try captured("chain_chord_task")[0].embed.chain)
        #expect(chain.map(\.task) == ["math.mul", "celery.chord"])
    }

    @Test func signaturesRoundTripThroughJSON() throws {
        for shape in ["chain3", "chord3", "chain_group_task", "link_two", "link_error"] {
            for (_, embed) in try captured(shape) {
                #expect(try CanvasEmbed(json: embed.json) == embed)
            }
        }
    }

    @Test func badSignaturesAreRefusedWithAReason() throws {
        #expect(throws: MessageDecodingError.self) { try Signature(json: .object(["args": []])) }
        #expect(throws: MessageDecodingError.self) { try Signature(json: .object(["task": "a", "args": "x"])) }
        #expect(throws: MessageDecodingError.self) { try CanvasEmbed(json: .object(["chain": "x"])) }
        #expect(throws: MessageDecodingError.self) {
            try Signature(json: .object(["task": "celery.chunks", "subtask_type": "chunks"]))
        }
        do {
            _ = try Signature(json: .object(["task": "celery.group", "kwargs": .object(["tasks": [1]])]))
            Issue.record("a group of non-signatures decoded")
        } catch {
            #expect(error.reason.contains("signature"))
        }
    }
}
