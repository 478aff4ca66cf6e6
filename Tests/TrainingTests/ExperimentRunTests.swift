import CZlib
import Foundation
import TestSupport
import Testing

// `ssgd experiment` with real processes: the runner and its cells are the `ssgd` binary.
// A tiny synthetic plan end to end (parallel cells, analysis, the report, --report-only, a
// rerun that skips everything, one figure rendered to PNG); --dry-run; a failing cell that
// the others outlive; interruption between cells and inside a cell, resumed to the same bytes
// as an uninterrupted run; and cells through `ssgd launch`.

@Suite(.serialized) struct ExperimentRunTests {
    /// A folder with base.yaml (a small MLP on synthetic data, `epochs` epochs of 16 steps)
    /// and plan.yaml (`axes` plus `extra`), output in the folder's out/.
    static func planFolder(axes: String, epochs: Int = 2, hidden: String = "[16]", shape: String = "[1, 8, 8]", extra: String = "") throws -> String {
        let folder = Fixtures.temporaryDirectory("ssgd-experiment")
        try """
            model: mlp
            hidden: \(hidden)
            dataset: synthetic
            synthetic_shape: \(shape)
            synthetic_classes: 3
            synthetic_train_samples: 1024
            synthetic_test_samples: 128
            batch_size: 64
            ghost_batch: 32
            epochs: \(epochs)
            lr: 0.1
            checkpoint_every_steps: 8
            progress_seconds: 0.5
            """.write(toFile: folder + "/base.yaml", atomically: true, encoding: .utf8)
        try "name: tiny\nconfig: base.yaml\noutput: \(folder)/out\n\(extra)axes:\n\(axes)\n"
            .write(toFile: folder + "/plan.yaml", atomically: true, encoding: .utf8)
        return folder
    }

    struct Status: Decodable {
        struct Cell: Decodable {
            var name: String
            var status: String
            var step: Int?
            var total_steps: Int?
            var attempts: Int
            var error: String?
            var analysis: String
        }
        var cells: [Cell]
    }

    static func status(_ folder: String) throws -> Status {
        try JSONDecoder().decode(Status.self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/out/experiment.json")))
    }

    static func hashes(_ folder: String, _ cells: [String]) -> [String?] {
        cells.map { SSGDProcess.parametersHash(runDirectory: "\(folder)/out/runs/\($0)") }
    }

    @Test func dryRunListsTheCellsAndRunsNothing() throws {
        let folder = try Self.planFolder(axes: "  method: [vanilla, spectral]\n  seed: [1, 2]")
        let (status, output) = try SSGDProcess.run(["experiment", folder + "/plan.yaml", "--dry-run"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("4 cells"))
        let lines = output.split(separator: "\n")
        for cell in ["vanilla-s1", "vanilla-s2", "spectral-s1", "spectral-s2"] {
            #expect(lines.contains { $0.hasPrefix(cell + " ") && $0.contains(" new ") }, "\(output)")
        }
        #expect(!FileManager.default.fileExists(atPath: folder + "/out"))
        let (badStatus, badOutput) = try SSGDProcess.run(["experiment", folder + "/plan.yaml", "--dry-run", "--parallel", "0"])
        #expect(badStatus != 0 && badOutput.contains("--parallel"))
    }

    @Test func aTinyPlanRunsEndToEndAnalysesWritesTheReportAndSkipsFinishedCellsOnRerun() throws {
        // Noisy data and a strong spectral λ, so the two methods' curves differ in the figure.
        let folder = try Self.planFolder(
            axes: "  method: [vanilla, spectral]\n  seed: [1, 2]", epochs: 4, extra: "set: {synthetic_noise: 3.0, lambda: 0.5}\n")
        let plan = folder + "/plan.yaml"
        let (status, output) = try SSGDProcess.run(
            ["experiment", plan, "--parallel", "2", "--analyze-samples", "32", "--progress-seconds", "1"], timeout: 600)
        #expect(status == 0, "\(output)")
        let cells = ["vanilla-s1", "vanilla-s2", "spectral-s1", "spectral-s2"]
        let record = try Self.status(folder)
        #expect(record.cells.map(\.name) == cells)
        #expect(record.cells.allSatisfy { $0.status == "finished" && $0.analysis == "done" && $0.attempts == 1 && $0.step == 64 })
        for cell in cells {
            let run = "\(folder)/out/runs/\(cell)"
            #expect(FileManager.default.fileExists(atPath: run + "/summary.json"), "\(cell)")
            #expect(FileManager.default.fileExists(atPath: run + "/analysis.json"), "\(cell)")
            #expect(FileManager.default.fileExists(atPath: "\(folder)/out/logs/\(cell).log"))
        }
        #expect(output.contains("cells done"))
        #expect(output.contains("report of 4 run(s)"))
        let index = try String(contentsOfFile: folder + "/out/report/index.md", encoding: .utf8)
        for cell in cells { #expect(index.contains(cell), "index.md lists \(cell)") }
        let figure = folder + "/out/report/mlp-16-synthetic-b64-test-accuracy.svg"
        let written = (try? FileManager.default.contentsOfDirectory(atPath: folder + "/out/report")) ?? []
        #expect(FileManager.default.fileExists(atPath: figure), "\(written)")

        // Rerun: everything is finished and analysed, nothing starts.
        let again = try SSGDProcess.run(["experiment", plan], timeout: 120)
        #expect(again.status == 0, "\(again.output)")
        #expect(again.output.contains("4 finished, 0 to resume, 0 new"))
        #expect(!again.output.contains("started"))
        #expect(try Self.status(folder).cells.allSatisfy { $0.attempts == 1 })

        // --report-only writes the report from the run directories alone.
        try FileManager.default.removeItem(atPath: folder + "/out/report")
        let report = try SSGDProcess.run(["experiment", plan, "--report-only"], timeout: 120)
        #expect(report.status == 0, "\(report.output)")
        #expect(report.output.contains("Table 1"))
        #expect(FileManager.default.fileExists(atPath: folder + "/out/report/table1.md"))
        #expect(FileManager.default.fileExists(atPath: figure))

        try Self.checkRendering(figure, colors: ["vanilla": (0x4e, 0x79, 0xa7), "spectral": (0xe1, 0x57, 0x59)])
    }

    @Test func aFailingCellIsRecordedAndTheOthersRun() throws {
        let folder = try Self.planFolder(axes: """
              data:
                - {dataset: fashion-mnist, data_path: /nonexistent/fashion}
                - {dataset: synthetic}
              seed: [1]
            """)
        let (status, output) = try SSGDProcess.run(["experiment", folder + "/plan.yaml", "--no-analyze"], timeout: 300)
        #expect(status == 1, "\(output)")
        let record = try Self.status(folder)
        #expect(record.cells.count == 2)
        let failed = try #require(record.cells.first)
        #expect(failed.status == "failed")
        #expect(failed.error?.contains("/nonexistent/fashion") == true, "\(failed.error ?? "no error")")
        #expect(record.cells[1].name == "synthetic-s1" && record.cells[1].status == "finished")
        #expect(record.cells[1].analysis == "skipped")
        #expect(output.contains("FAILED"))
        #expect(output.contains("report of 1 run(s)"), "\(output)")
    }

    @Test func anInterruptedExperimentResumesToTheBytesOfAnUninterruptedOne() throws {
        let axes = "  seed: [1, 2]"
        let cells = ["s1", "s2"]
        let reference = try Self.planFolder(axes: axes, epochs: 16, hidden: "[256, 256]", shape: "[1, 16, 16]", extra: "set: {eval_every_epochs: 8}\n")
        let (status, output) = try SSGDProcess.run(["experiment", reference + "/plan.yaml", "--no-analyze"], timeout: 900)
        #expect(status == 0, "\(output)")
        let expected = Self.hashes(reference, cells)
        #expect(expected.allSatisfy { $0 != nil })

        let folder = try Self.planFolder(axes: axes, epochs: 16, hidden: "[256, 256]", shape: "[1, 16, 16]", extra: "set: {eval_every_epochs: 8}\n")
        let arguments = ["experiment", folder + "/plan.yaml", "--no-analyze", "--progress-seconds", "1"]
        // 1. Between cells: as soon as the first cell has finished.
        let first = try SSGDProcess(arguments)
        #expect(first.waitForOutput("[s1] finished", timeout: 600), "\(first.output)")
        kill(first.processID, SIGINT)
        #expect(first.wait(timeout: 300) == 130, "\(first.output)")
        var record = try Self.status(folder)
        #expect(record.cells.map(\.status) == ["finished", "interrupted"], "\(first.output)")
        #expect(first.output.contains("continue with: ssgd experiment"))

        // 2. Inside a cell: once the running cell's current attempt has printed a progress line
        // (it trains, and its stop handlers are installed).
        let second = try SSGDProcess(arguments)
        var inside: String?
        let deadline = Date().addingTimeInterval(600)
        while inside == nil && Date() < deadline && second.process.isRunning {
            if let running = (try? Self.status(folder))?.cells.first(where: { $0.status == "running" }),
               let log = try? String(contentsOfFile: "\(folder)/out/logs/\(running.name).log", encoding: .utf8),
               let attempt = log.components(separatedBy: "==> ").last, attempt.contains("\nstep ") {
                inside = running.name
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        let interrupted = try #require(inside, "no cell was seen training:\n\(second.output)")
        kill(second.processID, SIGINT)
        #expect(second.wait(timeout: 300) == 130, "\(second.output)")
        record = try Self.status(folder)
        let cell = try #require(record.cells.first { $0.name == interrupted })
        #expect(cell.status == "interrupted", "\(second.output)")
        #expect((cell.step ?? 0) > 0 && (cell.step ?? 0) < (cell.total_steps ?? 0), "\(cell)")
        let log = try String(contentsOfFile: "\(folder)/out/logs/\(interrupted).log", encoding: .utf8)
        #expect(log.components(separatedBy: "==> ").last?.contains("stopped at step") == true, "\(log)")

        // 3. The same command continues to the end, to the same bytes.
        let (finalStatus, finalOutput) = try SSGDProcess.run(arguments, timeout: 900)
        #expect(finalStatus == 0, "\(finalOutput)")
        #expect(finalOutput.contains("[\(interrupted)] resumed from step"), "\(finalOutput)")
        #expect(try Self.status(folder).cells.allSatisfy { $0.status == "finished" })
        #expect(Self.hashes(folder, cells) == expected)
    }

    @Test func aCellStopsWithACheckpointWhenItsRunnerIsKilled() throws {
        let folder = try Self.planFolder(axes: "  seed: [1]", epochs: 200, hidden: "[256, 256]", shape: "[1, 16, 16]")
        let runner = try SSGDProcess(["experiment", folder + "/plan.yaml", "--no-analyze"])
        #expect(runner.waitForOutput("[s1] started (pid ", timeout: 120), "\(runner.output)")
        let line = try #require(runner.output.split(separator: "\n").first { $0.contains("[s1] started (pid ") })
        let pid = try #require(Int32(line.split(separator: "(pid ")[1].prefix { $0.isNumber }))
        let log = folder + "/out/logs/s1.log"
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline && !((try? String(contentsOfFile: log, encoding: .utf8))?.contains("\nstep ") ?? false) {
            Thread.sleep(forTimeInterval: 0.02)
        }
        kill(runner.processID, SIGKILL)
        _ = runner.wait(timeout: 30)
        let gone = Date().addingTimeInterval(60)
        while SSGDProcess.isAlive(pid) && Date() < gone { Thread.sleep(forTimeInterval: 0.05) }
        #expect(!SSGDProcess.isAlive(pid), "the cell outlived its runner")
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text.contains("stopped at step"), "\(text)")
    }

    @Test func cellsRunThroughLaunchGiveTheBytesOfTrain() throws {
        let folder = try Self.planFolder(axes: "  method: [spectral]")
        let (status, output) = try SSGDProcess.run(
            ["experiment", folder + "/plan.yaml", "--no-analyze", "--launch-workers", "2", "--threads", "1"], timeout: 300)
        #expect(status == 0, "\(output)")
        #expect(output.contains("ssgd launch with 2 worker(s)"))
        let log = try String(contentsOfFile: folder + "/out/logs/spectral.log", encoding: .utf8)
        #expect(log.contains("launch: coordinator on"), "\(log)")
        let launched = SSGDProcess.parametersHash(runDirectory: folder + "/out/runs/spectral")
        let trained = try Self.planFolder(axes: "  method: [spectral]")
        let local = try SSGDProcess.run(["experiment", trained + "/plan.yaml", "--no-analyze", "--threads", "1"], timeout: 300)
        #expect(local.status == 0, "\(local.output)")
        #expect(launched != nil && launched == SSGDProcess.parametersHash(runDirectory: trained + "/out/runs/spectral"))
    }

    // MARK: - A figure, rendered

    /// Renders `svg` with rsvg-convert (Debian librsvg2-bin; `make test` installs it) and checks
    /// the picture: its size, that it is not blank, and that each named colour (a method's
    /// line) covers some pixels.
    static func checkRendering(_ svg: String, colors: [String: (UInt8, UInt8, UInt8)]) throws {
        guard let converter = ["/usr/bin/rsvg-convert", "/usr/local/bin/rsvg-convert"].first(where: FileManager.default.isExecutableFile) else {
            Issue.record("rsvg-convert is not installed: `make test-deps` installs it (Debian librsvg2-bin)")
            return
        }
        let png = svg.replacingOccurrences(of: ".svg", with: ".png")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: converter)
        process.arguments = ["--format", "png", "--output", png, svg]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let image = try #require(PNGImage(path: png), "\(png) is not an 8-bit RGB(A) PNG")
        #expect(image.width >= 400 && image.height >= 250, "\(image.width)×\(image.height)")
        let total = image.width * image.height
        var ink = 0
        var counts = [String: Int]()
        for index in 0..<total {
            let (r, g, b) = image.pixel(index)
            if Int(r) + Int(g) + Int(b) < 3 * 235 { ink += 1 }
            // The plot area: the legend's swatches (18 × 10 pixels each) sit in the right quarter.
            guard index % image.width < image.width * 3 / 4 else { continue }
            for (name, color) in colors where abs(Int(r) - Int(color.0)) + abs(Int(g) - Int(color.1)) + abs(Int(b) - Int(color.2)) <= 24 {
                counts[name, default: 0] += 1
            }
        }
        // Axes, labels and lines: some ink, far from all of it; each method's line drawn.
        #expect(ink > total / 100 && ink < total / 2, "\(ink) of \(total) pixels are not white")
        for name in colors.keys { #expect(counts[name, default: 0] > 150, "\(name)'s line covers \(counts[name, default: 0]) pixels") }
    }
}

/// An 8-bit RGB or RGBA, non-interlaced PNG, decoded (IDAT inflated with zlib, scanline
/// filters undone): enough to look at what rsvg-convert drew.
struct PNGImage {
    let width: Int
    let height: Int
    let channels: Int
    let pixels: [UInt8]

    func pixel(_ index: Int) -> (UInt8, UInt8, UInt8) {
        let base = index * channels
        guard channels == 4 else { return (pixels[base], pixels[base + 1], pixels[base + 2]) }
        // Composite over white, as a viewer shows it.
        let alpha = Int(pixels[base + 3])
        func over(_ value: UInt8) -> UInt8 { UInt8((Int(value) * alpha + 255 * (255 - alpha)) / 255) }
        return (over(pixels[base]), over(pixels[base + 1]), over(pixels[base + 2]))
    }

    init?(path: String) {
        guard let data = FileManager.default.contents(atPath: path), data.count > 8,
              Array(data.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] else { return nil }
        let bytes = [UInt8](data)
        func be32(_ at: Int) -> Int { Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3]) }
        var position = 8
        var header: (width: Int, height: Int, depth: UInt8, colorType: UInt8, interlace: UInt8)?
        var compressed = [UInt8]()
        while position + 12 <= bytes.count {
            let length = be32(position)
            let type = String(decoding: bytes[(position + 4)..<(position + 8)], as: UTF8.self)
            let body = position + 8
            guard body + length + 4 <= bytes.count else { return nil }
            if type == "IHDR" {
                header = (be32(body), be32(body + 4), bytes[body + 8], bytes[body + 9], bytes[body + 12])
            } else if type == "IDAT" {
                compressed += bytes[body..<(body + length)]
            }
            position = body + length + 4
        }
        guard let header, header.depth == 8, header.interlace == 0, header.colorType == 2 || header.colorType == 6 else { return nil }
        width = header.width
        height = header.height
        channels = header.colorType == 6 ? 4 : 3
        let stride = width * channels
        var raw = [UInt8](repeating: 0, count: height * (stride + 1))
        var rawLength = uLongf(raw.count)
        let status = raw.withUnsafeMutableBufferPointer { out in
            compressed.withUnsafeBufferPointer { input in
                uncompress(out.baseAddress, &rawLength, input.baseAddress, uLong(input.count))
            }
        }
        guard status == Z_OK, Int(rawLength) == raw.count else { return nil }
        var image = [UInt8](repeating: 0, count: height * stride)
        for row in 0..<height {
            let filter = raw[row * (stride + 1)]
            for column in 0..<stride {
                let x = Int(raw[row * (stride + 1) + 1 + column])
                let a = column >= channels ? Int(image[row * stride + column - channels]) : 0
                let b = row > 0 ? Int(image[(row - 1) * stride + column]) : 0
                let c = row > 0 && column >= channels ? Int(image[(row - 1) * stride + column - channels]) : 0
                let predictor: Int
                switch filter {
                case 0: predictor = 0
                case 1: predictor = a
                case 2: predictor = b
                case 3: predictor = (a + b) / 2
                case 4:
                    let p = a + b - c
                    let (pa, pb, pc) = (abs(p - a), abs(p - b), abs(p - c))
                    predictor = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                default: return nil
                }
                image[row * stride + column] = UInt8((x + predictor) & 0xFF)
            }
        }
        pixels = image
    }
}
