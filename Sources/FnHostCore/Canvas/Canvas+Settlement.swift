import CeleryProtocol

extension Canvas {
    /// Adds to a finished task's settlement what its canvas needs (celery-protocol.md §1.6-§1.8):
    /// on success, the follow-up messages (published before the result is stored) and the
    /// result's `children`; on failure, FAILURE of the remaining chain steps and the errbacks;
    /// either way its chord part. A success whose follow-ups cannot be built (a malformed
    /// embed, a chord on a backend without chords) becomes a FAILURE with that error, and
    /// fails on like any failure: nothing downstream is left waiting.
    public func `continue`(_ settlement: inout Settlement, request: TaskRequest) {
        guard let finished = settlement.finished else { return }
        let message = request.message
        let embed: CanvasEmbed
        do {
            embed = try CanvasEmbed(body: message.body)
        } catch {
            if case .succeeded = finished {
                fail(&settlement, request: request, exception: error.exception, embed: CanvasEmbed())
            }
            return
        }
        if embed.isEmpty { return }
        switch finished {
        case .succeeded(let resultJSON):
            do {
                let next = try succeeded(message, embed: embed, resultJSON: resultJSON)
                settlement.publish += next.publish
                settlement.results += next.results
                settlement.chordSizes += next.chordSizes
                settlement.chordParts += next.chordParts
                if !next.children.isEmpty, let i = settlement.results.firstIndex(where: { $0.taskId == message.id && $0.status == .success }) {
                    settlement.results[i].children = next.children
                }
            } catch {
                fail(&settlement, request: request, exception: error.exception, embed: embed)
            }
        case .failed(let exception, let traceback):
            add(failed(message, embed: embed, exception: exception, traceback: traceback, storeResults: request.storesResult), to: &settlement)
        }
    }

    private func fail(_ settlement: inout Settlement, request: TaskRequest, exception: TaskException, embed: CanvasEmbed) {
        let message = request.message
        let traceback = Settlement.traceback(exception, context: "the canvas of task \(message.task)[\(message.id)] cannot continue")
        var meta = ResultMeta.exception(exception, taskId: message.id, traceback: traceback, groupId: message.group, parentId: message.parentId)
        meta.replyTo = message.replyTo
        settlement.results = request.storesResult ? [meta] : []
        settlement.finished = .failed(exception, traceback: traceback)
        add(failed(message, embed: embed, exception: exception, traceback: traceback, storeResults: request.storesResult), to: &settlement)
    }

    private func add(_ next: Continuation, to settlement: inout Settlement) {
        settlement.results += next.results
        settlement.chordParts += next.chordParts
        settlement.publishAfterStore += next.publishAfterStore
    }
}
