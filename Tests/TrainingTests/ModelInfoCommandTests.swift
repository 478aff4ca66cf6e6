import Testing
import TestSupport

/// `ssgd model info NAME` prints the parameter counts, BN layers and forward MACs of MODELS.md.
@Suite struct ModelInfoCommandTests {
    @Test(arguments: [
        ("mlp", "1863690 parameters", "1.862 MMACs"),
        ("vgg16", "14986698 parameters, 13 BN layers", "313.464 MMACs"),
        ("nin", "984356 parameters, 0 BN layers", "223.592 MMACs"),
        ("densenet40", "1060132 parameters, 39 BN layers", "264.853 MMACs"),
    ])
    func printsTheCountsOfMODELS(name: String, parameters: String, macs: String) throws {
        let result = try SSGDProcess.run(["model", "info", name], timeout: 60)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains(parameters), "\(result.output)")
        #expect(result.output.contains(macs), "\(result.output)")
    }

    @Test func anUnknownModelIsAClearError() throws {
        let result = try SSGDProcess.run(["model", "info", "resnet"], timeout: 60)
        #expect(result.status == 1)
        #expect(result.output.contains("unknown model 'resnet'"))
        #expect(result.output.contains("densenet40"))
    }
}
