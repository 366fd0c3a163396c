using Nemotron.Gym.Abstractions;
using Nemotron.Gym.Conversation;

namespace Nemotron.Gym.Sandbox.Tests;

/// <summary>The parts of the contract that need no sandbox: trimming for a model, limits, settings.</summary>
public sealed class ContractTests
{
    [Fact]
    public void Short_text_is_returned_as_is()
    {
        Assert.Equal("hello\n", SandboxText.TrimForModel("hello\n"));
        var exactly = new string('a', SandboxText.DefaultModelChars);
        Assert.Same(exactly, SandboxText.TrimForModel(exactly));
    }

    [Fact]
    public void Long_text_keeps_head_and_tail_with_a_marker_within_the_budget()
    {
        var text = "HEAD" + new string('m', 50_000) + "TAIL";
        var trimmed = SandboxText.TrimForModel(text, 1000);
        Assert.True(trimmed.Length <= 1000, $"{trimmed.Length} characters");
        Assert.StartsWith("HEAD", trimmed);
        Assert.EndsWith("TAIL", trimmed);
        var omitted = text.Length - (trimmed.Length - trimmed.Split('\n')[1].Length - 2);
        Assert.Contains($"[... {omitted} characters omitted ...]", trimmed);
    }

    [Fact]
    public void Trimming_never_splits_a_surrogate_pair()
    {
        var text = string.Concat(Enumerable.Repeat("😀", 5000));
        for (var budget = 100; budget < 140; budget++)
        {
            var trimmed = SandboxText.TrimForModel(text, budget);
            for (var i = 0; i < trimmed.Length; i++)
            {
                if (char.IsHighSurrogate(trimmed[i])) Assert.True(i + 1 < trimmed.Length && char.IsLowSurrogate(trimmed[i + 1]), $"budget {budget}: lone high surrogate at {i}");
                if (char.IsLowSurrogate(trimmed[i])) Assert.True(i > 0 && char.IsHighSurrogate(trimmed[i - 1]), $"budget {budget}: lone low surrogate at {i}");
            }
        }
    }

    [Fact]
    public void Limits_are_validated_with_the_field_named()
    {
        Assert.Empty(SandboxLimits.Default.Validate());
        var bad = SandboxLimits.Default with { WallTime = TimeSpan.Zero, OpenFiles = 50_000, MemoryBytes = 1 };
        var problems = bad.Validate();
        Assert.Contains(problems, p => p.StartsWith("wall_time"));
        Assert.Contains(problems, p => p.StartsWith("open_files"));
        Assert.Contains(problems, p => p.StartsWith("memory"));
    }

    [Fact]
    public void Output_decodes_invalid_utf8_without_throwing()
    {
        var output = new SandboxOutput([0x6f, 0x6b, 0xff, 0xc3], false);
        Assert.Equal("ok\uFFFD\uFFFD", output.Text);
    }

    [Fact]
    public void Settings_read_the_sandbox_section_and_name_bad_values()
    {
        var settings = SandboxSettings.FromValues(new Dictionary<string, string>
        {
            ["backend"] = "docker", ["docker.endpoint"] = "unix:///x.sock", ["docker.runtime"] = "runsc", ["memory_mb"] = "512", ["wall_time_s"] = "2.5",
        }, "run.yaml");
        Assert.Equal("docker", settings.Backend);
        Assert.Equal("unix:///x.sock", settings.DockerEndpoint);
        Assert.Equal("runsc", settings.DockerRuntime);
        Assert.Equal(512L << 20, settings.Limits.MemoryBytes);
        Assert.Equal(TimeSpan.FromSeconds(2.5), settings.Limits.WallTime);

        var backend = Assert.Throws<FormatException>(() => SandboxSettings.FromValues(new Dictionary<string, string> { ["backend"] = "podman" }, "run.yaml"));
        Assert.Contains("run.yaml: sandbox.backend", backend.Message);
        var unknown = Assert.Throws<FormatException>(() => SandboxSettings.FromValues(new Dictionary<string, string> { ["memroy_mb"] = "5" }, "run.yaml"));
        Assert.Contains("sandbox.memroy_mb: unknown setting", unknown.Message);
        var range = Assert.Throws<FormatException>(() => SandboxSettings.FromValues(new Dictionary<string, string> { ["slots"] = "0" }, "run.yaml"));
        Assert.Contains("sandbox.slots", range.Message);
    }
}
