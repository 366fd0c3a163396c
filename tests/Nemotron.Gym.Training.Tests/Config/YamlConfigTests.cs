using Nemotron.Gym.Training.Config;
using Nemotron.Gym.Training;

namespace Nemotron.Gym.Training.Tests;

public class YamlConfigTests
{
    private const string Yaml = """
        out: runs/x
        seed: 3
        model:
          layers: 2
          width: 64
        data:
          train: [a.txt]
          valid: b.txt
        train:
          lr: 1e-3
          steps: 50
        """;

    [Fact]
    public void BindsNestedKeysListsAndDefaults()
    {
        var c = YamlConfig.Parse<PretrainConfig>(Yaml, "p.yaml");
        Assert.Equal("runs/x", c.Out);
        Assert.Equal(3, c.Seed);
        Assert.Equal(2, c.Model.Layers);
        Assert.Equal(4, c.Model.Heads); // default kept
        Assert.Equal(["a.txt"], c.Data.Train);
        Assert.Equal(["b.txt"], c.Data.Valid); // a scalar stands for a one-item list
        Assert.Equal(1e-3f, c.Train.Lr);
        Assert.Equal(16, c.Train.BatchSize);
    }

    [Fact]
    public void OverridesApplyOnTopAndAreCheckedTheSameWay()
    {
        var c = YamlConfig.Parse<PretrainConfig>(Yaml, "p.yaml", ["train.lr=2e-3", "model.heads=8", "train.micro_batch=4"]);
        Assert.Equal(2e-3f, c.Train.Lr);
        Assert.Equal(8, c.Model.Heads);
        var e = Assert.Throws<ConfigException>(() => YamlConfig.Parse<PretrainConfig>(Yaml, "p.yaml", ["train.lr=fast"]));
        Assert.Contains("--set train.lr=fast", e.Message);
        Assert.Contains("expected a number", e.Message);
    }

    [Fact]
    public void UnknownKeysNameFileLineAndTheKnownKeys()
    {
        var e = Assert.Throws<ConfigException>(() => YamlConfig.Parse<PretrainConfig>(Yaml + "\n  lrr: 1", "p.yaml"));
        Assert.Contains("p.yaml:12", e.Message);
        Assert.Contains("train.lrr", e.Message);
        Assert.Contains("warmup_steps", e.Message);
    }

    [Fact]
    public void BadValuesNameTheKey()
    {
        var e = Assert.Throws<ConfigException>(() => YamlConfig.Parse<PretrainConfig>(Yaml, "p.yaml", ["model.heads=5"]));
        Assert.Contains("model.heads", e.Message);
        e = Assert.Throws<ConfigException>(() => YamlConfig.Parse<PretrainConfig>(Yaml.Replace("out: runs/x", "out: ''"), "p.yaml"));
        Assert.Contains("out", e.Message);
        e = Assert.Throws<ConfigException>(() => YamlConfig.Parse<SftConfig>("out: x\ninit: y\nloss_aggregation: tokens\ndata: {train: a, valid: b}", "s.yaml"));
        Assert.Contains("s.yaml:3", e.Message);
        Assert.Contains("token, sample", e.Message);
    }

    [Fact]
    public void InvalidYamlIsReportedWithItsLine()
    {
        var e = Assert.Throws<ConfigException>(() => YamlConfig.Parse<PretrainConfig>("out: x\nmodel: [1,\n", "bad.yaml"));
        Assert.Contains("bad.yaml", e.Message);
    }

    [Fact]
    public void WritesBackWhatItReads()
    {
        var c = YamlConfig.Parse<SftConfig>("out: x\ninit: 'a: b'\nloss_aggregation: sample\ndata: {train: [t1, t2], valid: v}", "s.yaml");
        var again = YamlConfig.Parse<SftConfig>(YamlConfig.ToYaml(c), "round-trip");
        Assert.Equal("a: b", again.Init);
        Assert.Equal(LossAggregation.Sample, again.LossAggregation);
        Assert.Equal(["t1", "t2"], again.Data.Train);
    }

    public sealed class WithMaps
    {
        public Dictionary<string, string> Empty { get; set; } = new();
        public Dictionary<string, string> Full { get; set; } = new();
    }

    /// <summary>An empty mapping is written as {} and reads back empty (written as "empty:" alone it read back as null and was refused).</summary>
    [Fact]
    public void WritesBackEmptyMappings()
    {
        var c = YamlConfig.Parse<WithMaps>("full: {a: \"1\"}", "m.yaml");
        var again = YamlConfig.Parse<WithMaps>(YamlConfig.ToYaml(c), "round-trip");
        Assert.Empty(again.Empty);
        Assert.Equal("1", again.Full["a"]);
    }
}
