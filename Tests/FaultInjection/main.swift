// ssgd-faults: the `ssgd` command line with test-only fault hooks, for the fault-tolerance tests
// (never shipped; `ssgd` has no hooks). `launch` starts its workers from this same binary, so
// the hooks reach them too. Hooks, from the environment:
//   SSGD_TEST_WORKER_NAME=NAME        the hooks below that name a step apply to this worker only
//                                     (default: every worker)
//   SSGD_TEST_WORKER_EXIT_AT_STEP=N   exit with status 3 on receiving step N's train task
//   SSGD_TEST_WORKER_STALL_AT_STEP=N  stop computing at step N's train task (mid-step; heartbeats
//                                     still flow), so a test can kill the worker there
//   SSGD_TEST_WORKER_STALL_IN_STEP=N  stop computing inside the first unit of step N this process
//                                     computes (a worker that meets another has claimed it by then)
//   SSGD_TEST_WORKER_DELAY_MS=N       every train task takes N ms longer (every worker; outside
//                                     the compute time a worker reports)
//   SSGD_TEST_UNIT_DELAY_MS=N         every train unit this process computes takes N ms longer
//                                     (inside its reported compute time: a slower worker)
//   SSGD_TEST_NAN_AT_STEP=N           a NaN in the first input of step N's units (in workers)
//   SSGD_TEST_BLAS_CORE=NAME          workers report NAME as their OpenBLAS core name (kernel)

import Cluster
import Foundation
import SSGDCommands
import Training
import Wire

/// The hooks the environment asks for.
func faultHooks(_ environment: [String: String]) -> WorkerFaultHooks {
    func step(_ variable: String) -> UInt64? { environment[variable].flatMap { UInt64($0) } }
    let onlyWorker = environment["SSGD_TEST_WORKER_NAME"]
    let exitAtStep = step("SSGD_TEST_WORKER_EXIT_AT_STEP")
    let stallAtStep = step("SSGD_TEST_WORKER_STALL_AT_STEP")
    let delayMilliseconds = step("SSGD_TEST_WORKER_DELAY_MS")
    var hooks = WorkerFaultHooks()
    hooks.beforeTask = { worker, kind, step in
        guard kind == .train else { return }
        let named = onlyWorker.map { $0 == worker } ?? true
        if named, step == exitAtStep {
            Console.line("worker \(worker): exiting at step \(step) (test hook SSGD_TEST_WORKER_EXIT_AT_STEP)")
            exit(3)
        }
        if let delayMilliseconds { usleep(UInt32(delayMilliseconds * 1000)) }
        if named, step == stallAtStep {
            Console.line("worker \(worker): stalling at step \(step) (test hook SSGD_TEST_WORKER_STALL_AT_STEP)")
            while true { sleep(3600) }
        }
    }
    let nanAtStep = step("SSGD_TEST_NAN_AT_STEP").map { Int($0) }
    let unitDelayMilliseconds = step("SSGD_TEST_UNIT_DELAY_MS")
    let stallInStep = step("SSGD_TEST_WORKER_STALL_IN_STEP").map { Int($0) }
    if nanAtStep != nil || unitDelayMilliseconds != nil || stallInStep != nil {
        hooks.shardInput = { step, unit, input in
            if step == nanAtStep { input[0] = .nan }
            if let unitDelayMilliseconds { usleep(UInt32(unitDelayMilliseconds * 1000)) }
            if step == stallInStep {
                Console.line("stalling in unit \(unit) of step \(step) (test hook SSGD_TEST_WORKER_STALL_IN_STEP)")
                while true { sleep(3600) }
            }
        }
    }
    hooks.reportedBLASCore = environment["SSGD_TEST_BLAS_CORE"]
    return hooks
}

SSGD.main(workerFaultHooks: faultHooks(ProcessInfo.processInfo.environment))
