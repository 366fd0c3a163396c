using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Model.Tokenization;
using Nemotron.Gym.Store;
using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.Reliability.Tests;

/// <summary>
/// The bad-input suite: each case builds broken input in a folder of its own (a config, a checkpoint, a data file, a
/// store, a plugin, a model answer) and runs the real gym tool on it. Every case must end with a non-zero exit code
/// and one last line "error: ..." that names what is wrong (the file, line, field or address given per case), with no
/// .NET exception or stack trace anywhere in the output, and must leave every file of its folder as it was (except
/// those a case names as its output).
/// </summary>
public sealed class BadInputTests : IClassFixture<BadInputTests.Fixtures>
{
    /// <summary>Built once: a small checkpoint and a store with one run, which cases copy and break.</summary>
    public sealed class Fixtures : IDisposable
    {
        public string Root { get; } = Directory.CreateTempSubdirectory("gym-bad-input-").FullName;
        public string Checkpoint { get; }
        public string Store { get; }

        public Fixtures()
        {
            Checkpoint = Path.Combine(Root, "ckpt");
            using (var backend = new CpuBackend(1))
            using (var model = new GptModel(backend, new GptConfig(Layers: 1, Width: 16, Heads: 2, Context: 64)))
            {
                model.InitializeWeights(1);
                Nemotron.Gym.Model.Checkpoints.Checkpoint.Save(Checkpoint, model, new ByteTokenizer());
            }
            Store = Path.Combine(Root, "store", "rollouts.db");
            Directory.CreateDirectory(Path.GetDirectoryName(Store)!);
            var store = RolloutStores.OpenAsync("sqlite:" + Store).GetAwaiter().GetResult();
            store.AddRolloutsAsync([TestRollouts.Make("run1", 1, "math/a", 0), TestRollouts.Make("run1", 1, "math/a", 1)]).GetAwaiter().GetResult();
            var now = DateTimeOffset.UtcNow;
            store.PutRunAsync(new RunRecord("run1", "completed", 1, 1, "", now, now)).GetAwaiter().GetResult();
            store.DisposeAsync().AsTask().GetAwaiter().GetResult();
            SqliteConnection.ClearAllPools();
        }

        public void Dispose() => Directory.Delete(Root, true);
    }

    private readonly Fixtures _fx;
    public BadInputTests(Fixtures fx) => _fx = fx;

    /// <summary>One case: builds its input in <c>dir</c> and returns the arguments, what the error must name, and files the command may write.</summary>
    private delegate (string[] Args, string MustName, string[] MayChange) Case(string dir, Fixtures fx);

    private static readonly Dictionary<string, Case> Cases = new()
    {
        // ---- stores --------------------------------------------------------------------------------------------
        ["store: not a database"] = (dir, _) =>
        {
            var db = Write(dir, "rollouts.db", Encoding.ASCII.GetBytes(new string('x', 5000)));
            return (["runs", "list", "--store", db], db, []);
        },
        ["store: truncated"] = (dir, fx) =>
        {
            var bytes = File.ReadAllBytes(fx.Store);
            var db = Write(dir, "rollouts.db", bytes[..(bytes.Length / 3)]);
            return (["rollouts", "export", "--store", db, "-o", Path.Combine(dir, "out.jsonl")], db, ["out.jsonl"]);
        },
        ["ui: a store that is not a database"] = (dir, _) =>
        {
            var db = Write(dir, "rollouts.db", Encoding.ASCII.GetBytes(new string('x', 5000)));
            return (["ui", "--store", db, "--port", "0"], db, []);
        },
        ["silo: a judge URL that is not http(s)"] = (_, _) =>
            (["silo", "--postgres", "Host=127.0.0.1;Port=1;Username=gym;Database=gym", "--judge-url", "ftp://judge.example/v1"], "--judge-url", []),
        ["store: a run record with a bad date"] = (dir, fx) =>
        {
            var db = CopyStore(dir, fx);
            Sql(db, "UPDATE gym_runs SET created = 'yesterday-ish' WHERE run_id = 'run1'");
            return (["runs", "list", "--store", db], db, []);
        },
        ["store: mistyped sqlite: path is not created"] = (dir, _) =>
            (["runs", "list", "--store", "sqlite:" + Path.Combine(dir, "rollots.db")], Path.Combine(dir, "rollots.db"), []),
        ["store: mistyped path is not created"] = (dir, _) =>
            (["runs", "list", "--store", Path.Combine(dir, "nowhere", "rollouts.db")], Path.Combine(dir, "nowhere", "rollouts.db"), []),
        ["store: unreachable PostgreSQL"] = (dir, _) =>
        {
            int port = Ports.Free();
            return (["runs", "list", "--store", $"postgres:Host=127.0.0.1;Port={port};Username=gym;Database=gym;Timeout=3"], $"127.0.0.1:{port}", []);
        },
        ["export: --out is a folder"] = (dir, fx) =>
        {
            Directory.CreateDirectory(Path.Combine(dir, "a-folder"));
            return (["rollouts", "export", "--store", CopyStore(dir, fx), "-o", Path.Combine(dir, "a-folder")], Path.Combine(dir, "a-folder"), []);
        },
        ["export: --out under a file"] = (dir, fx) =>
        {
            var file = Write(dir, "plain.txt", "x"u8.ToArray());
            return (["rollouts", "export", "--store", CopyStore(dir, fx), "-o", Path.Combine(file, "out.jsonl")], Path.Combine(file, "out.jsonl"), []);
        },
        ["export: full disk"] = (dir, fx) => (["rollouts", "export", "--store", CopyStore(dir, fx), "-o", "/dev/full"], "/dev/full", []),
        ["import: NaN reward"] = (dir, fx) =>
        {
            var line = JsonNode.Parse(ExportLine(fx))!.AsObject();
            line["reward"] = "NaN";
            var file = Write(dir, "in.jsonl", Encoding.UTF8.GetBytes(ExportLine(fx) + "\n" + line.ToJsonString() + "\n"));
            return (["rollouts", "import", "--store", CopyStore(dir, fx), "-i", file], file + ":2", []);
        },
        ["import: bytes that are not UTF-8"] = (dir, fx) =>
        {
            var bytes = Encoding.UTF8.GetBytes(ExportLine(fx) + "\n").Concat(Encoding.UTF8.GetBytes(ExportLine(fx).Replace("matched 4", "matched \u0001")).Select(b => b == 1 ? (byte)0xC3 : b)).Concat("\n"u8.ToArray()).ToArray();
            var file = Write(dir, "in.jsonl", bytes);
            return (["rollouts", "import", "--store", CopyStore(dir, fx), "-i", file], file + ":2", []);
        },

        // ---- checkpoints ---------------------------------------------------------------------------------------
        ["checkpoint: overflowing shape"] = (dir, fx) => (Generate(EditHeader(dir, fx, h => h["wte"]!["shape"] = new JsonArray(65536, 65536, 65536, 65536))), "model.safetensors", []),
        ["checkpoint: shape of the wrong JSON type"] = (dir, fx) => (Generate(EditHeader(dir, fx, h => h["wte"]!["shape"] = "big")), "shape", []),
        ["checkpoint: dtype of the wrong JSON type"] = (dir, fx) => (Generate(EditHeader(dir, fx, h => h["wte"]!["dtype"] = 32)), "dtype", []),
        ["checkpoint: one-element data_offsets"] = (dir, fx) => (Generate(EditHeader(dir, fx, h => h["wte"]!["data_offsets"] = new JsonArray(0))), "data_offsets", []),
        ["checkpoint: NaN weights"] = (dir, fx) => (Generate(EditWeights(dir, fx, float.NaN)), "NaN", []),
        ["checkpoint: manifest entry outside the folder"] = (dir, fx) =>
        {
            var ck = CopyCheckpoint(dir, fx);
            var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(ck, "manifest.json")))!;
            manifest["files"]!["../../../../etc/shadow"] = new JsonObject { ["sha256"] = "00", ["bytes"] = 1 };
            File.WriteAllText(Path.Combine(ck, "manifest.json"), manifest.ToJsonString());
            return (Generate(ck), "../../../../etc/shadow", []);
        },
        ["eval: a number where text belongs"] = (dir, fx) =>
        {
            var file = Write(dir, "eval.jsonl", "{\"question\": \"1+1\", \"answer\": \"2\"}\n{\"question\": 5, \"answer\": \"2\"}\n"u8.ToArray());
            return (["generate", "--checkpoint", fx.Checkpoint, "--eval", file, "--device", "cpu"], file + ":2", []);
        },

        ["pretrain data: bytes that are not UTF-8"] = (dir, _) =>
        {
            var file = Write(dir, "pre.yaml", "out: run\ndata:\n  train: [t.txt]\n  valid: [t.txt]\n"u8.ToArray());
            Write(dir, "t.txt", [.. "one line\nsecond line\n"u8.ToArray(), 0xFF, 0xFE, .. "\n"u8.ToArray()]);
            return (["pretrain", "-c", file, "--device", "cpu"], "t.txt:3", []);
        },
        ["sft data: bytes that are not UTF-8"] = (dir, fx) =>
        {
            var file = Write(dir, "sft.yaml", Encoding.UTF8.GetBytes($"out: run\ninit: {fx.Checkpoint}\ndata:\n  train: [c.jsonl]\n  valid: [c.jsonl]\n"));
            Write(dir, "c.jsonl", [.. "{\"messages\": [{\"role\": \"user\", \"content\": \"caf"u8.ToArray(), 0xE9, .. "\"}]}\n"u8.ToArray()]);
            return (["sft", "-c", file, "--device", "cpu"], "c.jsonl:1", []);
        },

        // ---- configs -------------------------------------------------------------------------------------------
        ["config: unclosed { then a tab"] = (dir, _) =>
        {
            var file = Write(dir, "run.yaml", "train: {\tsteps: 1\n"u8.ToArray());
            return (["rl", "-c", file], file, []);
        },
        ["config: --set bogus.key"] = (dir, _) =>
        {
            var file = Write(dir, "run.yaml", "out: x\ninit: y\nenvironments:\n  - name: math\n"u8.ToArray());
            return (["rl", "-c", file, "--set", "bogus.key=1"], "bogus", []);
        },
        ["config: a model too big for memory"] = (dir, _) =>
        {
            var file = Write(dir, "pre.yaml", "out: run\ndata:\n  train: [t.txt]\n  valid: [t.txt]\n"u8.ToArray());
            Write(dir, "t.txt", "hello world\n"u8.ToArray());
            return (["pretrain", "-c", file, "--set", "model.layers=100000", "--device", "cpu"], "model.layers", []);
        },
        ["config: activations past any machine's memory"] = (dir, _) =>
        {
            var file = Write(dir, "pre.yaml", "out: run\ndata:\n  train: [t.txt]\n  valid: [t.txt]\n"u8.ToArray());
            Write(dir, "t.txt", "hello world\n"u8.ToArray());
            return (["pretrain", "-c", file, "--set", "train.batch_size=65536", "--set", "train.micro_batch=65536", "--device", "cpu"], "GB to train", []);
        },
        ["config: a width past any count"] = (dir, _) =>
        {
            var file = Write(dir, "pre.yaml", "out: run\ndata:\n  train: [t.txt]\n  valid: [t.txt]\n"u8.ToArray());
            Write(dir, "t.txt", "hello world\n"u8.ToArray());
            return (["pretrain", "-c", file, "--set", "model.width=2000000000", "--device", "cpu"], "model.width", []);
        },

        // ---- environments and plugins --------------------------------------------------------------------------
        ["plugin: InitializeAsync throws"] = (dir, _) =>
            (["env", "grade", "reasoning", "--setting", "families=no_such_family", "--task", "0", "--response", "x"], "no_such_family", []),
        ["env grade: unknown split"] = (dir, _) => (["env", "grade", "math", "--task", "0", "--response", "4", "--split", "no-such-split"], "no-such-split", []),
        ["env sft-data: negative count"] = (dir, _) => (["env", "sft-data", "math", "--count", "-5", "--out", Path.Combine(dir, "sft.jsonl")], "--count", []),
        ["plugin.json: assembly is a number"] = (dir, _) => (["env", "check", Plugin(dir, "5")], "plugin.json", []),
        ["plugin.json: assembly outside the folder"] = (dir, _) => (["env", "check", Plugin(dir, "\"../../../usr/lib/x.dll\"")], "outside the plugin folder", []),
        ["env new: a reserved name"] = (dir, _) => (["env", "new", "Grade", "--out", dir], "Grade", []),
    };

    public static TheoryData<string> CaseNames => new(Cases.Keys);

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void BadInputEndsInOneClearLineAndANonZeroExitCodeAndChangesNoFile(string name)
    {
        var dir = Path.Combine(_fx.Root, "cases", string.Concat(name.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-')));
        Directory.CreateDirectory(dir);
        var (args, mustName, mayChange) = Cases[name](dir, _fx);
        SqliteConnection.ClearAllPools();
        var before = Snapshot(dir, mayChange);
        var fixturesBefore = Snapshot(Path.GetDirectoryName(_fx.Store)!, []);

        var (exit, output) = RunGym(dir, args);

        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        string context = $"gym {string.Join(' ', args)} → exit {exit}:\n{output}";
        Assert.True(exit != 0, $"bad input accepted (exit 0): {context}");
        Assert.DoesNotContain("Unhandled exception", output);
        Assert.DoesNotMatch(@"(?m)^\s+at [\w.<>`]+\(", output);
        Assert.DoesNotMatch(@"\b(System|Microsoft|Npgsql|YamlDotNet)\.[\w.]+Exception\b", output);
        Assert.NotEmpty(lines);
        Assert.StartsWith("error:", lines[^1]);
        Assert.Contains(mustName, lines[^1]);
        Assert.Equal(before, Snapshot(dir, mayChange));
        Assert.Equal(fixturesBefore, Snapshot(Path.GetDirectoryName(_fx.Store)!, []));
    }

    /// <summary>Model output is untrusted but it is not bad input: whatever the answer, it is graded (exit 0, a reward), never a crash.</summary>
    public static TheoryData<string, string, string> ModelAnswers => new()
    {
        { "math", "math-hw-001", "\\boxed{" },
        { "math", "math-hw-001", string.Concat(Enumerable.Repeat("\\boxed{", 5000)) + "40" },
        { "math", "math-hw-001", "<tool_call>{\"name\": \"calculator\", \"arguments\": {\"expression\": \"8*5\"}}</tool_call>" },
        { "tool_use", "tool-train-00000", "<tool_call>not json at all</tool_call>" },
        { "tool_use", "tool-train-00000", "<tool_call>{\"name\": \"kv_set\", \"arguments\": {\"key\": \"" + new string('k', 300) + "\", \"value\": \"v\"}}</tool_call><|end|>done" },
        { "tool_use", "tool-train-00000", "<tool_call>{\"name\": \"calculator\", \"arguments\": {\"expression\": \"" + string.Concat(Enumerable.Repeat("(", 20000)) + "\"}}</tool_call><|end|>?" },
    };

    [Theory]
    [MemberData(nameof(ModelAnswers))]
    public void AnyModelAnswerIsGradedWithoutACrash(string environment, string task, string answer)
    {
        var dir = Path.Combine(_fx.Root, "answers", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var file = Write(dir, "answer.txt", Encoding.UTF8.GetBytes(answer));
        var (exit, output) = RunGym(dir, ["env", "grade", environment, "--task", task, "--response", file]);
        Assert.True(exit == 0, $"exit {exit}:\n{output}");
        Assert.Contains("reward:", output);
        Assert.DoesNotContain("Unhandled exception", output);
        Assert.DoesNotMatch(@"(?m)^\s+at [\w.<>`]+\(", output);
    }

    // ---- helpers --------------------------------------------------------------------------------------------

    private static (int Exit, string Output) RunGym(string dir, string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(RepoPaths.GymBuild, "gym.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2))) { p.Kill(true); throw new TimeoutException($"gym {string.Join(' ', args)} did not finish"); }
        p.WaitForExit();
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    /// <summary>Path → SHA-256 of every file under <paramref name="dir"/> (and the folders, as empty entries), except the named outputs.</summary>
    private static SortedDictionary<string, string> Snapshot(string dir, string[] except)
    {
        var all = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var d in Directory.GetDirectories(dir, "*", SearchOption.AllDirectories)) all[Path.GetRelativePath(dir, d) + "/"] = "";
        foreach (var f in Directory.GetFiles(dir, "*", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(dir, f);
            if (except.Contains(rel)) continue;
            all[rel] = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)));
        }
        return all;
    }

    private static string Write(string dir, string name, byte[] bytes)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static void Sql(string db, string sql)
    {
        using var c = new SqliteConnection($"Data Source={db};Pooling=false");
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    private static string CopyStore(string dir, Fixtures fx)
    {
        var db = Path.Combine(dir, "store.db");
        if (!File.Exists(db)) File.Copy(fx.Store, db);
        return db;
    }

    private static string ExportLine(Fixtures fx)
    {
        var text = new StringWriter();
        RolloutJsonl.ExportAsync(ToAsync([TestRollouts.Make("imp", 1, "math/b", 0)]), text).GetAwaiter().GetResult();
        return text.ToString().TrimEnd();
    }

    private static async IAsyncEnumerable<StoredRollout> ToAsync(IEnumerable<StoredRollout> items)
    {
        foreach (var i in items) { await Task.Yield(); yield return i; }
    }

    private static string[] Generate(string checkpoint) => ["generate", "--checkpoint", checkpoint, "-p", "hi", "--max-tokens", "2", "--device", "cpu"];

    private static string CopyCheckpoint(string dir, Fixtures fx)
    {
        var ck = Path.Combine(dir, "ckpt");
        Directory.CreateDirectory(ck);
        foreach (var f in Directory.GetFiles(fx.Checkpoint)) File.Copy(f, Path.Combine(ck, Path.GetFileName(f)));
        return ck;
    }

    /// <summary>A copy of the checkpoint whose safetensors header is edited, with its manifest brought up to date (as a
    /// converter from another tool would write it), so the header itself is what the loader has to judge.</summary>
    private static string EditHeader(string dir, Fixtures fx, Action<JsonObject> edit)
    {
        var ck = CopyCheckpoint(dir, fx);
        var path = Path.Combine(ck, "model.safetensors");
        var bytes = File.ReadAllBytes(path);
        int len = (int)BitConverter.ToUInt64(bytes, 0);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, len))!.AsObject();
        edit(header);
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        File.WriteAllBytes(path, [.. BitConverter.GetBytes((ulong)json.Length), .. json, .. bytes[(8 + len)..]]);
        Remanifest(ck);
        return ck;
    }

    private static string EditWeights(string dir, Fixtures fx, float value)
    {
        var ck = CopyCheckpoint(dir, fx);
        var path = Path.Combine(ck, "model.safetensors");
        var bytes = File.ReadAllBytes(path);
        BitConverter.GetBytes(value).CopyTo(bytes, bytes.Length - 4);
        File.WriteAllBytes(path, bytes);
        Remanifest(ck);
        return ck;
    }

    private static void Remanifest(string ck)
    {
        var manifestPath = Path.Combine(ck, "manifest.json");
        var manifest = JsonNode.Parse(File.ReadAllText(manifestPath))!;
        foreach (var (name, info) in manifest["files"]!.AsObject())
            info!["sha256"] = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(ck, name))));
        File.WriteAllText(manifestPath, manifest.ToJsonString());
    }

    /// <summary>A plugin folder: a copy of the built-in math plugin with a plugin.json whose "assembly" is <paramref name="assemblyJson"/>.</summary>
    private static string Plugin(string dir, string assemblyJson)
    {
        var folder = Path.Combine(dir, "plugin");
        Directory.CreateDirectory(folder);
        foreach (var f in Directory.GetFiles(Path.Combine(RepoPaths.Plugins, "Nemotron.Gym.Environments.Math")))
            File.Copy(f, Path.Combine(folder, Path.GetFileName(f)));
        File.WriteAllText(Path.Combine(folder, "plugin.json"), $"{{\"assembly\": {assemblyJson}}}");
        return folder;
    }
}
