import Foundation
import Testing
import TestSupport

/// A one-node Slurm cluster of Debian's slurm-wlm (22.05) and munge, private to one test: munged
/// with its own key and socket, slurmctld and slurmd in the foreground as children of the test
/// (Daemon, not Process: slurmctld closes the descriptors it inherits),
/// every file (slurm.conf, state, spool, logs, pid files) under `folder`, free ports, and
/// SLURM_CONF in the environment of every Slurm command. `stop()` cancels what is left, ends the
/// daemons and kills any process they started.
final class SlurmCluster {
    /// Where each program comes from: a missing one fails the test naming its Debian package.
    static let programs: [(name: String, package: String)] = [
        ("munged", "munge"), ("mungekey", "munge"), ("slurmctld", "slurm-wlm (slurmctld)"), ("slurmd", "slurm-wlm (slurmd)"),
        ("sbatch", "slurm-wlm (slurm-client)"), ("scontrol", "slurm-wlm (slurm-client)"),
        ("scancel", "slurm-wlm (slurm-client)"), ("squeue", "slurm-wlm (slurm-client)"), ("sinfo", "slurm-wlm (slurm-client)"),
    ]

    let folder: String
    let host: String
    var conf: String { folder + "/slurm.conf" }
    var environment: [String: String] { ["SLURM_CONF": conf] }
    private var paths = [String: String]()
    private var daemons = [Daemon]()

    /// Starts munged, slurmctld and slurmd and waits (bounded) until the node is idle. On a
    /// throw, whatever was started has been stopped.
    init(folder: String, cpus: Int) throws {
        self.folder = folder
        let hostname = (try? String(contentsOfFile: "/proc/sys/kernel/hostname", encoding: .utf8)) ?? "localhost"
        host = String(hostname.trimmingCharacters(in: .whitespacesAndNewlines).prefix { $0 != "." })
        for (program, package) in Self.programs {
            let found = ExternalProgram.which(program)
                ?? ["/usr/sbin", "/sbin", "/usr/bin"].map { "\($0)/\(program)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
            guard let found else {
                throw SlurmError("\(program) not found: `make test-deps` installs it (Debian \(package))")
            }
            paths[program] = found
        }
        guard getuid() == 0 else { throw SlurmError("slurmd runs jobs as their users and needs root (CI runs as root)") }
        do {
            try start(cpus: cpus)
        } catch {
            stop()
            throw error
        }
    }

    private func start(cpus: Int) throws {
        let manager = FileManager.default
        for sub in ["munge-key", "munge", "state", "spool", "log"] {
            try manager.createDirectory(atPath: "\(folder)/\(sub)", withIntermediateDirectories: true)
        }
        try manager.setAttributes([.posixPermissions: 0o700], ofItemAtPath: folder + "/munge-key")
        try manager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder + "/munge")
        let key = folder + "/munge-key/munge.key"
        let made = try ExternalProgram.run(paths["mungekey"]!, ["--create", "--keyfile=\(key)"])
        guard made.status == 0 else { throw SlurmError("mungekey --create failed:\n\(made.output)") }
        try manager.setAttributes([.posixPermissions: 0o400], ofItemAtPath: key)
        let socket = folder + "/munge/munge.socket"
        try launch("munged", ["--foreground", "--force", "--socket=\(socket)", "--key-file=\(key)",
                              "--pid-file=\(folder)/munge/munged.pid", "--log-file=\(folder)/log/munged.log",
                              "--seed-file=\(folder)/munge/munged.seed"])
        try waitFor("munged to create \(socket)", timeout: 30) { manager.fileExists(atPath: socket) }

        let controllerPort = try LoopbackHTTP.freePort()
        var nodePort = try LoopbackHTTP.freePort()
        while nodePort == controllerPort { nodePort = try LoopbackHTTP.freePort() }
        // cred_expire=5: a requeued job may start again cred_expire + 1 s after it was requeued
        // (121 s with the default 120). sched_interval: pending jobs are looked at every 2 s,
        // not every 60 s. KillWait stays at its default, 30 s.
        try """
            ClusterName=ssgdtest
            SlurmctldHost=\(host)(127.0.0.1)
            SlurmctldPort=\(controllerPort)
            SlurmdPort=\(nodePort)
            SlurmUser=root
            SlurmdUser=root
            AuthType=auth/munge
            CredType=cred/munge
            AuthInfo=socket=\(socket),cred_expire=5
            StateSaveLocation=\(folder)/state
            SlurmdSpoolDir=\(folder)/spool
            SlurmctldPidFile=\(folder)/slurmctld.pid
            SlurmdPidFile=\(folder)/slurmd.pid
            SlurmctldLogFile=\(folder)/log/slurmctld.log
            SlurmdLogFile=\(folder)/log/slurmd.log
            ProctrackType=proctrack/linuxproc
            TaskPlugin=task/none
            JobAcctGatherType=jobacct_gather/none
            AccountingStorageType=accounting_storage/none
            JobCompType=jobcomp/none
            MpiDefault=none
            SwitchType=switch/none
            SchedulerType=sched/backfill
            SchedulerParameters=sched_interval=2,bf_interval=1
            SelectType=select/cons_tres
            SelectTypeParameters=CR_CPU
            ReturnToService=2
            NodeName=\(host) NodeAddr=127.0.0.1 CPUs=\(cpus) State=UNKNOWN
            PartitionName=test Nodes=\(host) Default=YES MaxTime=INFINITE State=UP

            """.write(toFile: conf, atomically: true, encoding: .utf8)
        try launch("slurmctld", ["-D"])
        try launch("slurmd", ["-D", "-N", host])
        try waitFor("the node to be idle (sinfo)", timeout: 60) {
            let state = try? run("sinfo", ["--noheader", "--Node", "--format=%T"])
            return state?.status == 0 && state?.output.trimmingCharacters(in: .whitespacesAndNewlines) == "idle"
        }
    }

    /// A daemon as a child process in the foreground, its stdout and stderr to log/NAME.out.
    private func launch(_ name: String, _ arguments: [String]) throws {
        let environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        daemons.append(try Daemon(paths[name]!, arguments, environment: environment, log: "\(folder)/log/\(name).out"))
    }

    /// Polls `condition` every 0.1 s; throws with the daemon logs after `timeout` seconds (a
    /// bound against hangs, not a measurement).
    func waitFor(_ what: String, timeout: Double, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return }
            if let dead = daemons.first(where: { !$0.isRunning }) {
                throw SlurmError("\(dead.name) \(dead.ending) while waiting for \(what)\n\(logs())")
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw SlurmError("no \(what) after \(Int(timeout)) s\n\(logs())")
    }

    /// A Slurm command of this cluster, to completion.
    func run(_ program: String, _ arguments: [String]) throws -> ExternalProgram.Result {
        try ExternalProgram.run(paths[program] ?? program, arguments, environment: environment)
    }

    /// `sbatch --parsable ARGUMENTS`: the job id.
    func submit(_ arguments: [String]) throws -> Int {
        let result = try run("sbatch", ["--parsable"] + arguments)
        let id = Int(result.output.trimmingCharacters(in: .whitespacesAndNewlines).prefix { $0 != ";" })
        guard result.status == 0, let id else { throw SlurmError("sbatch \(arguments) failed:\n\(result.output)\n\(logs())") }
        return id
    }

    /// The fields of `scontrol show job -o ID` (JobState, ExitCode, Restarts …); empty if unknown.
    func job(_ id: Int) -> [String: String] {
        guard let result = try? run("scontrol", ["show", "job", "--oneliner", "\(id)"]), result.status == 0 else { return [:] }
        var fields = [String: String]()
        for word in result.output.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            guard let equals = word.firstIndex(of: "=") else { continue }
            fields[String(word[..<equals])] = String(word[word.index(after: equals)...])
        }
        return fields
    }

    static let finalStates: Set<String> = [
        "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
    ]

    /// Waits (bounded) until the job has ended for good; its fields.
    @discardableResult
    func waitUntilEnded(_ id: Int, timeout: Double = 300) throws -> [String: String] {
        var fields = [String: String]()
        try waitFor("end of job \(id)", timeout: timeout) {
            fields = job(id)
            return Self.finalStates.contains(fields["JobState"] ?? "")
        }
        return fields
    }

    /// The tails of the daemon logs, for failure messages.
    func logs() -> String {
        ["munged.log", "slurmctld.log", "slurmd.log", "munged.out", "slurmctld.out", "slurmd.out"].map { name in
            let text = (try? String(contentsOfFile: "\(folder)/log/\(name)", encoding: .utf8)) ?? "(none)"
            return "--- \(name) (end):\n" + text.split(separator: "\n", omittingEmptySubsequences: false).suffix(25).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    /// Cancels every job, waits (bounded) for them to go, ends the daemons (SIGTERM, then
    /// SIGKILL after 10 s each) and kills whatever they started that is still there.
    func stop() {
        if daemons.contains(where: { $0.name == "slurmctld" && $0.isRunning }) {
            _ = try? run("scancel", ["--user=root"])
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                let queue = try? run("squeue", ["--noheader", "--format=%i"])
                if queue?.status != 0 || queue?.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty == true { break }
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
        for daemon in daemons.reversed() { daemon.stop(grace: 10) }
        daemons = []
        // Job processes (slurmstepd, the batch script, ssgd) inherit SLURM_CONF from slurmd or
        // sbatch: any left over carries this cluster's conf in its environment.
        for pid in Self.processes(withEnvironment: "SLURM_CONF=\(conf)") { kill(pid, SIGKILL) }
    }

    /// Pids of the processes whose environment holds `entry` exactly.
    static func processes(withEnvironment entry: String) -> [Int32] {
        let own = getpid()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap(Int32.init).filter { pid in
            guard pid != own, let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
            return data.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == entry }
        }
    }
}

struct SlurmError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
