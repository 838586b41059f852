// dp-train tokenize: encode a file of texts with a checkpoint's tokenizer.json, one JSON line
// {"input_ids": [...], "token_type_ids": [...], "attention_mask": [...]} per row.
//
//   dp-train tokenize --tokenizer artifacts/models/all-MiniLM-L6-v2 --input sentences.txt
//   dp-train tokenize --tokenizer tok.json --input mrpc.tsv --text-column "#1 String" --text-pair-column "#2 String" --max-length 128

import ArgumentParser
import DPData
import DPTokenizers
import Foundation

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encode texts with a tokenizer.json (or a BERT vocab.txt folder) into JSON lines of ids.",
        discussion: "The input is one text per line, or a .csv/.tsv/.jsonl table with named columns.")

    enum PaddingChoice: String, ExpressibleByArgument, CaseIterable {
        case none, tokenizer, longest
    }

    @Option(name: .long, help: ArgumentHelp("A tokenizer.json, or a folder holding one (or vocab.txt).", valueName: "dir|file"))
    var tokenizer: String
    @Option(name: .long, help: "One text per line, or a CSV/TSV/JSONL file.") var input: String
    @Option(name: .long, help: "The column holding the texts (tables; plain text files have `text`).") var textColumn = "text"
    @Option(name: .long, help: "The column holding the second text of each pair.") var textPairColumn: String?
    @Option(name: .long, help: "Truncate to this many tokens, special tokens included (default: tokenizer.json's truncation).")
    var maxLength: Int?
    @Option(name: .long, help: "none; tokenizer: as tokenizer.json's padding section says, over the whole file; longest: to the longest row.")
    var padding: PaddingChoice = .none
    @Option(name: .long, help: "Write here instead of standard output.") var output: String?
    @Option(name: .long, help: .hidden) var benchRepeats: Int?

    func validate() throws {
        if let maxLength, maxLength < 1 { throw ValidationError("--max-length must be at least 1, got \(maxLength)") }
        if let benchRepeats, benchRepeats < 1 { throw ValidationError("--bench-repeats must be at least 1") }
    }

    func run() throws {
        let tok = try Tokenizer(contentsOf: URL(fileURLWithPath: tokenizer))
        let table = try Table(contentsOf: URL(fileURLWithPath: input))
        let texts = try table.column(textColumn)
        let pairs = try textPairColumn.map { try table.column($0) }
        if let benchRepeats {
            print(benchmark(tok, texts: texts, pairs: pairs, repeats: benchRepeats))
            return
        }
        var encodings = texts.indices.map { tok.encode(texts[$0], pair: pairs?[$0], maxLength: maxLength) }
        switch padding {
        case .none: break
        case .tokenizer: encodings = tok.pad(encodings)
        case .longest: encodings = tok.pad(encodings, using: Padding(padId: tok.padTokenId ?? 0))
        }
        var out = ""
        for e in encodings {
            out += "{\"input_ids\": [" + e.ids.map(String.init).joined(separator: ", ")
                + "], \"token_type_ids\": [" + e.typeIds.map(String.init).joined(separator: ", ")
                + "], \"attention_mask\": [" + e.attentionMask.map(String.init).joined(separator: ", ") + "]}\n"
        }
        if let output {
            do { try out.write(toFile: output, atomically: true, encoding: .utf8) } catch {
                throw ValidationError("--output \(output): cannot write (\(error.localizedDescription))")
            }
        } else {
            FileHandle.standardOutput.write(Data(out.utf8))
        }
    }

    /// One JSON line: texts per second and tokens per second of encode alone, on this thread,
    /// best of `repeats` passes over the texts (file reading and output are not timed).
    private func benchmark(_ tok: Tokenizer, texts: [String], pairs: [String]?, repeats: Int) -> String {
        var best = Double.infinity
        var tokens = 0
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            var count = 0
            for k in texts.indices { count += tok.encode(texts[k], pair: pairs?[k], maxLength: maxLength).ids.count }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            tokens = count
        }
        return "{\"texts\": \(texts.count), \"tokens\": \(tokens), \"best_s\": \(best), "
            + "\"texts_per_s\": \(Double(texts.count) / best), \"tokens_per_s\": \(Double(tokens) / best)}"
    }
}
