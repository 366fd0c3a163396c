using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Nemotron.Gym.Abstractions;
using static Nemotron.Gym.Environments.Swe.Tests.EpisodeTests;

namespace Nemotron.Gym.Environments.Swe.Tests;

/// <summary>
/// Hostile agents: each command runs in the agent's sandbox and must be contained (the host, its files and the hidden
/// tests out of reach), and a patch that attacks the tests or the runner is graded in the fresh sandbox, where it
/// cannot help. After each, the host's canary file must be untouched.
/// </summary>
[Collection("swe")]
public sealed class HostileTests(SweHost host) : IDisposable
{
    private readonly string _canary = Path.Combine(Path.GetTempPath(), $"swe-canary-{Environment.ProcessId}-{Guid.NewGuid():N}");
    private readonly byte[] _passwd = SHA256.HashData(File.ReadAllBytes("/etc/passwd"));

    private SweTask Task0 => host.Tasks[0];

    private async Task<IEpisode> Open(Dictionary<string, string>? settings = null)
    {
        File.WriteAllText(_canary, "canary");
        var env = settings is null ? host.Env : await host.StartAsync(host, settings);
        return await env.OpenEpisodeAsync(env.ToTaskRecord(Task0), new EpisodeContext(1, 0), default);
    }

    private void HostUntouched()
    {
        Assert.Equal("canary", File.ReadAllText(_canary));
        Assert.Equal(_passwd, SHA256.HashData(File.ReadAllBytes("/etc/passwd")));
        Assert.True(File.Exists(Path.Combine(SweHost.DataDirectory, "repos", Task0.Repo, "tests", "__init__.py")));
    }

    public void Dispose() => File.Delete(_canary);

    [Fact]
    public async Task Rm_rf_slash_destroys_only_the_agents_own_tree()
    {
        await using var episode = await Open();
        await Reply(episode, Bash("rm -rf / --no-preserve-root 2>/dev/null; rm -rf /* 2>/dev/null; echo done"));
        HostUntouched();
        // The session itself survives; the tree is gone, so the patch deletes every file and fixes nothing.
        Assert.Contains("python3", await Reply(episode, Bash("ls /usr/bin")));
        var grade = await episode.GradeAsync(default);
        Assert.False(grade.Masked, grade.Reason);
        Assert.Equal(0, grade.Reward);
        Assert.Contains("deleted file mode", grade.Evidence["patch"]);
    }

    [Fact]
    public async Task Searching_the_whole_filesystem_for_the_hidden_tests_finds_nothing()
    {
        var testName = Task0.FailToPass[0].Split('.')[^1];
        await using var episode = await Open(new() { ["command_timeout_s"] = "60" });
        var script = $$"""
            import os
            found, seen = [], 0
            needle = ('def ' + '{{testName}}').encode()
            for root, dirs, files in os.walk('/'):
                if root.startswith(('/proc', '/sys', '/dev')):
                    dirs[:] = []
                    continue
                for name in files:
                    seen += 1
                    try:
                        with open(os.path.join(root, name), 'rb') as f:
                            if needle in f.read(): found.append(os.path.join(root, name))
                    except OSError:
                        pass
            print('SEEN', seen, 'FOUND', found)
            """;
        await Reply(episode, Call("create", new JsonObject { ["path"] = "/work/repo/search.py", ["file_text"] = script }));
        var reply = await Reply(episode, Bash("python3 search.py"));
        Assert.Contains("FOUND []", reply);
        Assert.Matches(@"SEEN [1-9]\d{2,}", reply);
        HostUntouched();
    }

    [Fact]
    public async Task The_network_is_unreachable()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        await using var episode = await Open();
        var reply = await Reply(episode, Bash($$"""
            python3 -c "
            import socket
            for target in [('127.0.0.1', {{port}}), ('10.0.2.2', 80), ('1.1.1.1', 53)]:
                try:
                    socket.create_connection(target, timeout=2); print('CONNECTED', target)
                except OSError as e:
                    print('refused', target, type(e).__name__)
            "
            """));
        Assert.DoesNotContain("CONNECTED", reply);
        Assert.Equal(3, reply.Split("refused").Length - 1);
        Assert.False(listener.Pending());
        HostUntouched();
    }

    [Fact]
    public async Task A_fork_bomb_is_stopped_and_the_session_goes_on()
    {
        await using var episode = await Open(new() { ["command_timeout_s"] = "3" });
        var reply = await Reply(episode, Bash("python3 -c \"import os\nwhile True:\n    try: os.fork()\n    except OSError: pass\""));
        Assert.Contains("killed", reply);
        Assert.Contains("alive", await Reply(episode, Bash("echo alive")));
        HostUntouched();
    }

    [Fact]
    public async Task Writing_a_1GB_file_hits_the_file_size_limit_and_is_left_out_of_the_patch()
    {
        await using var episode = await Open(new() { ["command_timeout_s"] = "30" });
        var reply = await Reply(episode, Bash("python3 -c \"f = open('big.bin', 'wb')\nfor _ in range(1024): f.write(b'0' * (1 << 20))\"; ls -l big.bin"));
        Assert.DoesNotContain("1073741824", reply);
        Assert.Contains("[stderr]", reply);
        Assert.Contains("alive", await Reply(episode, Bash("echo alive")));
        var grade = await episode.GradeAsync(default);
        Assert.False(grade.Masked, grade.Reason);
        Assert.Contains("big.bin", grade.Evidence["skipped_files"]);
        Assert.DoesNotContain("big.bin", grade.Evidence["patch"]);
        HostUntouched();
    }

    [Fact]
    public async Task Files_outside_the_repository_cannot_be_edited()
    {
        await using var episode = await Open();
        Assert.Contains("outside the repository", await Reply(episode, Call("create", new JsonObject { ["path"] = "/etc/passwd", ["file_text"] = "x" })));
        Assert.Contains("'..'", await Reply(episode, Call("create", new JsonObject { ["path"] = "../grader/run_tests.py", ["file_text"] = "x" })));
        Assert.Contains("outside the repository", await Reply(episode, Call("view", new JsonObject { ["path"] = "/etc/shadow" })));
        var shell = await Reply(episode, Bash("echo x >> /etc/passwd; echo x > /usr/bin/python3; touch /tmp/../usr/x; echo end"));
        Assert.Contains("Read-only file system", shell);
        // Files the agent writes outside repo/ (in its scratch folder) are not part of its patch.
        await Reply(episode, Bash("echo 'x = 1' > ../outside.py"));
        var grade = await episode.GradeAsync(default);
        Assert.DoesNotContain("outside.py", grade.Evidence["patch"]);
        HostUntouched();
    }

    [Fact]
    public async Task Test_files_the_agent_writes_are_replaced_by_the_hidden_tests()
    {
        await using var episode = await Open();
        // A "test suite" that always passes, under the names the hidden tests use.
        foreach (var file in host.Env.Repositories.HiddenTests(Task0).Keys)
            await Reply(episode, Call("create", new JsonObject { ["path"] = file, ["file_text"] = "import unittest\n\nclass T(unittest.TestCase):\n    def test_ok(self):\n        pass\n" }));
        var grade = await episode.GradeAsync(default);
        Assert.False(grade.Masked, grade.Reason);
        Assert.Equal(0, grade.Reward);
        Assert.Contains("tests/", grade.Evidence["ignored_test_files"]);
        Assert.DoesNotContain("passed", JsonNode.Parse(grade.Evidence["FAIL_TO_PASS"])!.AsObject().Select(p => p.Value!.GetValue<string>()));
    }

    private string AppendTo(string path, string code)
    {
        var start = host.Env.Repositories.Starting(Task0);
        var lines = start[path].Split('\n').Length - 1;
        var added = string.Concat(code.Split('\n').Select(l => "+" + l + "\n"));
        return $"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -{lines},0 +{lines + 1},{code.Split('\n').Length} @@\n{added}";
    }

    private string PackageInit => host.Env.Repositories.Starting(Task0).Keys.First(k => k.EndsWith("/__init__.py", StringComparison.Ordinal));

    [Fact]
    public async Task A_patch_that_makes_every_assertion_pass_is_caught_as_tampering()
    {
        var patch = AppendTo(PackageInit, "import unittest\nunittest.TestCase.assertEqual = lambda self, *a, **k: None\nunittest.TestCase.assertTrue = lambda self, *a, **k: None");
        var grade = await host.Env.Grader.GradeAsync(Task0, patch, SweGradingSettings.Default, default);
        Assert.False(grade.Masked, grade.Reason);
        Assert.Equal(0, grade.Reward);
        Assert.Contains("unittest", grade.Reason);
        Assert.Contains("TestCase.assertEqual", grade.Evidence["tampered"]);
    }

    [Fact]
    public async Task A_patch_that_prints_a_forged_report_and_exits_gets_nothing()
    {
        var forged = new JsonObject
        {
            ["tests"] = new JsonObject(Task0.FailToPass.Concat(Task0.PassToPass).Select(id => KeyValuePair.Create(id, (JsonNode?)JsonValue.Create("passed")))),
            ["messages"] = new JsonObject(), ["tampered"] = new JsonArray(),
        }.ToJsonString();
        var patch = AppendTo(PackageInit, $"import os\nos.write(1, b'{forged}\\n')\nos._exit(0)");
        var grade = await host.Env.Grader.GradeAsync(Task0, patch, SweGradingSettings.Default, default);
        Assert.False(grade.Masked, grade.Reason);
        Assert.Equal(0, grade.Reward);
        Assert.Contains("without a report", grade.Reason);
    }

    [Fact]
    public async Task A_patch_with_a_sitecustomize_or_a_runner_outside_the_repo_cannot_help()
    {
        var site = "diff --git a/sitecustomize.py b/sitecustomize.py\nnew file mode 100644\n--- /dev/null\n+++ b/sitecustomize.py\n@@ -0,0 +1,2 @@\n+import unittest\n+unittest.TestCase.assertEqual = lambda self, *a, **k: None\n";
        var grade = await host.Env.Grader.GradeAsync(Task0, site, SweGradingSettings.Default, default);
        Assert.Equal(0, grade.Reward);
        Assert.False(grade.Evidence.ContainsKey("tampered"), "sitecustomize ran: -I should keep the repository off the start-up path");
        var runner = "diff --git a/../grader/run_tests.py b/../grader/run_tests.py\nnew file mode 100644\n--- /dev/null\n+++ b/../grader/run_tests.py\n@@ -0,0 +1 @@\n+print('hi')\n";
        var refused = await host.Env.Grader.GradeAsync(Task0, runner, SweGradingSettings.Default, default);
        Assert.Equal(0, refused.Reward);
        Assert.Contains("refused path", refused.Reason);
    }
}
