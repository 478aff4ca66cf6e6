import Data
import Testing
import TestSupport
import Training

// Input a careless user gives (issue 9 item 13): refused with the reason, never taken silently.

struct CarelessInputTests {
    @Test func aKeyGivenTwiceIsRefusedNamingBothLines() {
        #expect {
            _ = try TrainingConfig.parse(yaml: "lr: 0.1\nepochs: 2\nlr: 0.5\n")
        } throws: { error in
            "\(error)" == "config key 'lr': appears twice (lines 1 and 3); keep one"
        }
    }

    @Test func aCIFARBatchCutToOneRecordIsRefusedAsTruncated() throws {
        // Siblings of 200 records; data_batch_3.bin cut to exactly one record.
        let full = (0..<200).map { UInt8($0 % 10) }
        var replacing = [String: [UInt8]]()
        for i in 1...5 { replacing["data_batch_\(i).bin"] = ImageFiles.cifar10(full) }
        replacing["data_batch_3.bin"] = ImageFiles.cifar10([4])
        let folder = ImageFiles.cifar10Folder(replacing: replacing)
        let error = loadError { try DatasetLoader.load(config(.cifar10, folder)) }
        #expect("\(error.map { "\($0)" } ?? "loaded")".contains("data_batch_3.bin holds 1 record(s) while a sibling batch holds 200"))
        // Uneven but plausible batches still load.
        replacing["data_batch_3.bin"] = ImageFiles.cifar10(Array(full.prefix(150)))
        let uneven = try DatasetLoader.load(config(.cifar10, ImageFiles.cifar10Folder(replacing: replacing)))
        #expect(uneven.train.count == 950)
    }
}
