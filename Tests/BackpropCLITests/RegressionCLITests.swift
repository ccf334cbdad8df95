import BackpropCore
import BackpropHDF5
import BackpropTestSupport
import Foundation
import Testing

/// Regression targets end to end.
extension CLITests {
    @Test("regression end to end: import the committed Friedman #1 CSV, train with the README's config, RMSE, predict, export")
    func regression() throws {
        let csv = Self.root.appendingPathComponent("datasets/friedman1.csv").path
        let config = Self.root.appendingPathComponent("datasets/friedman1.yaml").path
        let imported = try backprop("import", "csv", csv, "--task", "regression", "--output", "friedman1.h5")
        #expect(imported.status == 0 && imported.standardOutput.contains("1600 train and 400 test samples of 10 features (float32), "
                                                                             + "1 real-valued target per sample"), "\(imported.standardError)")
        let trained = try backprop("train", "--config", config, "--data", "friedman1.h5", "--run-dir", "run")
        try #require(trained.status == 0, "\(trained.standardError)")
        #expect(trained.standardOutput.contains("test RMSE") && !trained.standardOutput.contains("accuracy"))

        // metrics.csv reports the validation RMSE; the last epoch's is far below predicting the mean (≈ 4.9) and near the noise (1.0).
        let metrics = try String(contentsOfFile: "\(directory)/run/metrics.csv", encoding: .utf8).split(separator: "\n")
        #expect(metrics[0] == "epoch,step,train_loss,validation_loss,validation_rmse,test_loss,test_rmse,learning_rate,samples_per_second,wall_time")
        let rmse = metrics.dropFirst().map { Double($0.split(separator: ",", omittingEmptySubsequences: false)[4])! }
        #expect(rmse.count == 60 && rmse.last! < 1.5, "validation RMSE per epoch: \(rmse)")
        // best.h5 holds the epoch of lowest validation RMSE.
        let best = try Checkpoint.load(from: "\(directory)/run/best.h5")
        #expect(best.task == .regression && best.history.epochs.last!.validationScore == rmse.min())
        let svg = try String(contentsOfFile: "\(directory)/run/curves.svg", encoding: .utf8)
        #expect(svg.contains(#"data-name="validation RMSE""#) && !svg.contains("accuracy"))

        // The test RMSE, read once at the end, is what evaluate gives for the final model.
        let testRMSE = try #require(trained.standardOutput.components(separatedBy: "test RMSE ").last?.split(separator: " ").first)
        let evaluated = try backprop("evaluate", "--checkpoint", "run/model.h5", "--data", "friedman1.h5")
        #expect(evaluated.status == 0 && evaluated.standardOutput.contains("RMSE \(testRMSE)"), "\(evaluated.standardOutput)")
        let predicted = try backprop("predict", "--checkpoint", "run/model.h5", "--input", "friedman1.h5", "--output", "p.csv")
        #expect(predicted.status == 0, "\(predicted.standardError)")
        let rows = try String(contentsOfFile: "\(directory)/p.csv", encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 401 && rows[0] == "index,y0")

        // Predictions match NumPy running the exported weights.
        for format in ["keras", "npz"] {
            #expect(try backprop("export", "--format", format, "run/model.h5", "--output", "model").status == 0)
        }
        #expect(try backprop("predict", "--checkpoint", "run/model.h5", "--input", "friedman1.h5", "--output", "p.h5").status == 0)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("check_export.py").path
        let check = try run("/usr/bin/python3", [script, "model", "friedman1.h5", "p.h5"], in: directory)
        #expect(check.status == 0 && check.standardOutput.contains("keras: 400 regression outputs"), "\(check.standardOutput) \(check.standardError)")

        // Real-valued targets with the default loss: a clear error naming the data and the fix.
        let wrongLoss = try backprop("train", "--data", "friedman1.h5", "--layers", "10,4,1", "--run-dir", "bad")
        #expect(wrongLoss.status != 0 && wrongLoss.standardError.contains("friedman1.h5")
                && wrongLoss.standardError.contains("--loss sum-of-squares"), "\(wrongLoss.standardError)")
        let wrongWidth = try backprop("train", "--data", "friedman1.h5", "--layers", "10,4,2", "--loss", "sum-of-squares", "--run-dir", "bad")
        #expect(wrongWidth.status != 0 && wrongWidth.standardError.contains("1 target values"), "\(wrongWidth.standardError)")
    }
}
