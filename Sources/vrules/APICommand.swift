import ArgumentParser
import Foundation
import Lint
import OperatorFiles

/// `vrules api`: editor definitions of the rule API, generated from the description the
/// sandbox is bound from.
struct APICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api",
        abstract: "Write editor definitions of the rule API (Lua Language Server or luacheck)."
    )

    @Flag(name: .customLong("luals"), help: "A Lua Language Server definition file (---@meta).")
    var luaLanguageServer = false

    @Flag(name: .customLong("luacheck"), help: "A luacheck configuration defining the std 'vrules'.")
    var luacheck = false

    @Argument(help: "The file to write (default: standard output).")
    var file: String?

    func validate() throws {
        guard self.luaLanguageServer != self.luacheck else {
            throw ValidationError("give exactly one of --luals or --luacheck")
        }
    }

    func run() throws {
        let text = self.luaLanguageServer ? EditorDefinitions.luaLanguageServer() : EditorDefinitions.luacheck()
        guard let file else {
            print(text, terminator: "")
            return
        }
        do {
            try OutputFile.write(Array(text.utf8), toPath: file)
        } catch {
            throw UsageFailure.exit("cannot write \(file): \(error.reason)")
        }
    }
}
