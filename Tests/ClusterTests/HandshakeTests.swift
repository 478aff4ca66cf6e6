import Engine
import Foundation
import TestSupport
import Testing
import Transport
import Wire

/// Wire protocol version 3 at the handshake, with real processes: a version-1 peer gets the
/// version error on either side, and a worker whose OpenBLAS kernel differs from the
/// coordinator's is refused with the fix unless the operator allows mixed kernels. The other
/// kernel is faked: `ssgd-faults` workers report SSGD_TEST_BLAS_CORE as their core name.
@Suite(.serialized) struct HandshakeTests {
    static let config = ClusterFixtures.write(ClusterFixtures.config(model: "mlp", method: "vanilla", epochs: 1))
    static let fake = ["SSGD_TEST_BLAS_CORE": "FakeCore"]
    /// This machine's kernel, which the coordinator (same library, same environment) has too.
    static let core = BLASThreads.coreName

    func coordinator(_ endpoint: String, _ run: String, workers: Int = 1, _ flags: [String] = []) throws -> SSGDProcess {
        let coordinator = try SSGDProcess(["coordinator", "--config", Self.config, "--bind", endpoint, "--run-dir", run,
                                           "--workers", String(workers), "--threads", "1"] + flags)
        #expect(coordinator.waitForOutput("waiting for", timeout: 60), "\(coordinator.output)")
        return coordinator
    }

    /// `ssgd worker` (or, `fake`, `ssgd-faults worker` reporting the kernel FakeCore).
    func worker(_ endpoint: String, _ name: String, fake: Bool = false) throws -> SSGDProcess {
        try SSGDProcess(["worker", "--connect", endpoint, "--threads", "1", "--name", name],
                        environment: fake ? Self.fake : [:], executable: fake ? .faults : .ssgd)
    }

    static func lines(_ output: String, containing text: String) -> Int {
        output.split(separator: "\n").filter { $0.contains(text) }.count
    }

    @Test func aWorkerWithAnotherOpenBLASKernelIsRefusedWithTheFixAndExits() throws {
        let endpoint = ClusterFixtures.ipcEndpoint()
        let run = Fixtures.temporaryDirectory("ssgd-kernel-refused") + "/run"
        let coordinator = try coordinator(endpoint, run)
        defer { coordinator.wait(timeout: 0) }
        let mixed = try worker(endpoint, "mixed", fake: true)
        #expect(mixed.wait(timeout: 60) == 1, "\(mixed.output)")
        let refusal = "worker mixed computes with the OpenBLAS kernel FakeCore, this coordinator with \(Self.core)"
        #expect(mixed.output.contains("the coordinator refused this worker: \(refusal)"), "\(mixed.output)")
        #expect(mixed.output.contains("\(refusal) (kernels round differently): pin one kernel on every machine with OPENBLAS_CORETYPE=NAME in the environment of every ssgd process, or allow mixed kernels with --allow-mixed-kernels (results then depend on which worker computed what)"))
        // The coordinator carries on with a worker of its own kernel.
        let honest = try worker(endpoint, "honest")
        #expect(coordinator.wait(timeout: 120) == 0, "\(coordinator.output)")
        #expect(honest.wait(timeout: 30) == 0, "\(honest.output)")
        #expect(coordinator.output.contains("refused a worker: \(refusal)"))
        #expect(coordinator.output.contains("worker honest joined (1 live; 1 lane(s), OpenBLAS \(Self.core); parameters and gradients through shared memory)"), "\(coordinator.output)")
        let summary = try #require(SSGDProcess.summary(runDirectory: run))
        #expect(summary["blas_core"] as? String == Self.core)
        #expect(summary["worker_blas_cores"] as? [String] == [Self.core])
    }

    @Test func withAllowMixedKernelsMixedWorkersJoinWithOneWarningPerKernel() throws {
        let endpoint = ClusterFixtures.ipcEndpoint()
        let run = Fixtures.temporaryDirectory("ssgd-kernel-mixed") + "/run"
        let coordinator = try coordinator(endpoint, run, workers: 3, ["--allow-mixed-kernels"])
        defer { coordinator.wait(timeout: 0) }
        let workers = [try worker(endpoint, "fake-a", fake: true), try worker(endpoint, "fake-b", fake: true),
                       try worker(endpoint, "honest")]
        #expect(coordinator.wait(timeout: 120) == 0, "\(coordinator.output)")
        for worker in workers { #expect(worker.wait(timeout: 30) == 0, "\(worker.output)") }
        let output = coordinator.output
        #expect(output.contains("worker fake-a joined"), "\(output)")
        #expect(output.contains("worker fake-b joined"))
        #expect(!output.contains("refused"))
        #expect(Self.lines(output, containing: "admitted (--allow-mixed-kernels): results now depend on which worker computed what") == 1, "\(output)")
        #expect(Self.lines(output, containing: "computes with the OpenBLAS kernel FakeCore, this coordinator with \(Self.core)") == 1)
        let summary = try #require(SSGDProcess.summary(runDirectory: run))
        #expect(summary["blas_core"] as? String == Self.core)
        #expect(summary["worker_blas_cores"] as? [String] == [Self.core, "FakeCore"].sorted())
    }

    @Test func launchRefusesAWorkerOfAnotherKernelUnlessMixedKernelsAreAllowed() throws {
        func launch(_ flags: [String]) throws -> (status: Int32?, output: String, run: String) {
            let run = Fixtures.temporaryDirectory("ssgd-kernel-launch") + "/run"
            let result = try SSGDProcess.run(
                ["launch", "--config", Self.config, "--run-dir", run, "--workers", "1", "--threads", "1"] + flags,
                environment: Self.fake, timeout: 120, executable: .faults)
            return (result.status, result.output, run)
        }
        let refused = try launch([])
        #expect(refused.status == 1, "\(refused.output)")
        #expect(refused.output.contains("OpenBLAS kernel FakeCore, this coordinator with \(Self.core)"), "\(refused.output)")
        #expect(refused.output.contains("--allow-mixed-kernels"))
        let allowed = try launch(["--allow-mixed-kernels"])
        #expect(allowed.status == 0, "\(allowed.output)")
        #expect(allowed.output.contains("admitted (--allow-mixed-kernels)"))
        #expect(SSGDProcess.summary(runDirectory: allowed.run)?["worker_blas_cores"] as? [String] == ["FakeCore"])
    }

    /// A version-1 worker's HELLO, byte for byte as version 1 wrote it.
    static func versionOneHello(job: Digest32) -> [OutgoingFrame] {
        let name = Array("old".utf8)
        var payload: [UInt8] = [1, 0] + job.bytes + [UInt8](repeating: 0, count: 32)  // version, job, data
        payload += [3, 0, 0, 0, 0, 0, 0, 0] + [1, 0, 0, 0] + [7, 0, 0, 0]  // capabilities, blasThreads, pid
        payload += [UInt8(name.count), 0] + name
        var header = Array("SSGD".utf8) + [1, 0, 1, 0] + job.bytes  // magic, version 1, hello
        header += [UInt8](repeating: 0, count: 8 + 4) + [1, 0, 0, 0]  // step, shard, one payload frame
        header += withUnsafeBytes(of: UInt64(payload.count).littleEndian, Array.init)
        return [.bytes(header), .bytes(payload)]
    }

    @Test func aVersionOneWorkerIsRefusedWithTheVersionError() throws {
        let endpoint = ClusterFixtures.ipcEndpoint()
        let coordinator = try coordinator(endpoint, Fixtures.temporaryDirectory("ssgd-v1-worker") + "/run")
        defer { coordinator.wait(timeout: 0) }
        let old = try ZMQSocket(.dealer)
        defer { old.close() }
        try old.connect(endpoint)
        try old.send(Self.versionOneHello(job: .zero))
        let reply = try #require(try old.receive(timeout: .seconds(30)))
        guard case .error(let error) = try WireProtocol.decode(reply).message else {
            Issue.record("the coordinator did not answer with ERROR")
            return
        }
        #expect(error.code == .versionMismatch)
        #expect(error.message == "worker speaks wire protocol version 1, this coordinator speaks 3: run the same ssgd build on every node")
        #expect(coordinator.waitForOutput("refused a worker: worker speaks wire protocol version 1", timeout: 10), "\(coordinator.output)")
    }

    /// A fake version-1 coordinator answers the worker's (version 3) HELLO: the worker says so and exits.
    @Test func aWorkerOfAVersionOneCoordinatorExitsWithTheVersionError() throws {
        let endpoint = ClusterFixtures.ipcEndpoint()
        let fake = try ZMQSocket(.router)
        defer { fake.close() }
        try fake.bind(endpoint)
        let worker = try SSGDProcess(["worker", "--connect", endpoint, "--name", "new", "--threads", "2", "--handshake-timeout", "20"])
        defer { worker.wait(timeout: 0) }
        let hello = try #require(try fake.receive(timeout: .seconds(60)), "\(worker.output)")
        let routingID = try #require(hello.first?.bytes)
        // What the worker says about itself.
        guard case .hello(let said) = try WireProtocol.decode(Array(hello.dropFirst())).message else {
            Issue.record("the worker did not say HELLO")
            return
        }
        #expect(said.lanes == 2 && said.blasCore == Self.core && said.workerName == "new")
        var welcome = try WireProtocol.encode(WireEnvelope(jobID: .zero, message: .welcome(
            WelcomeMessage(workerIndex: UInt32.max, heartbeatIntervalMilliseconds: 100, config: ""))))
        if case .bytes(var header) = welcome[0] {
            header[4] = 1  // as a version-1 coordinator would send it
            welcome[0] = .bytes(header)
        }
        try fake.send(to: routingID, welcome)
        #expect(worker.wait(timeout: 30) == 1, "\(worker.output)")
        #expect(worker.output.contains("the coordinator speaks wire protocol version 1, this worker speaks 3: run the same ssgd build on every node"), "\(worker.output)")
    }
}
