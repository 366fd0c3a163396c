namespace Nemotron.Gym.Cli.Tests;

/// <summary>The demo's difficulty calibration between SFT and RL: which value it gives the RL stage, and a kept choice read back.</summary>
public sealed class DemoCalibrationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("gym-calibration-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Theory]
    // The first value at or below the target, and nothing after it is measured.
    [InlineData("0.9,0.6,0.3", "b", 2)]
    [InlineData("0.2,0.1,0.0", "a", 1)]
    // Passes above the target at every value: the hardest one.
    [InlineData("0.9,0.8,0.7", "c", 3)]
    public async Task TheRlStageGetsTheEasiestValueTheSftPolicyPassesAtMostTheTargetOf(string rates, string expected, int measuredCount)
    {
        var byValue = new[] { "a", "b", "c" }.Zip(rates.Split(',').Select(r => double.Parse(r, System.Globalization.CultureInfo.InvariantCulture)))
            .ToDictionary(p => p.First, p => p.Second);
        var asked = new List<string>();
        var (chosen, measured) = await DemoCalibration.ChooseAsync(["a", "b", "c"], 0.6, v => { asked.Add(v); return Task.FromResult(byValue[v]); });
        Assert.Equal(expected, chosen);
        Assert.Equal(measuredCount, measured.Count);
        Assert.Equal(asked, measured.Select(m => m.Value));
        Assert.Equal(measured.Select(m => byValue[m.Value]), measured.Select(m => m.PassRate));
    }

    [Fact]
    public void AKeptChoiceIsReadBackAndABrokenOneIsRefusedNamingTheFile()
    {
        string path = Path.Combine(_dir, DemoCalibration.File);
        File.WriteAllText(path, """{"knobs": [{"environment": "math", "setting": "word_max", "value": "600"}]}""");
        Assert.Equal([("math", "word_max", "600")], DemoCalibration.Read(path));
        foreach (var broken in new[] { "{not json", """{"knobs": [{"environment": "math", "value": "600"}]}""", "[]" })
        {
            File.WriteAllText(path, broken);
            var e = Assert.Throws<CliException>(() => DemoCalibration.Read(path));
            Assert.Contains(path, e.Message);
        }
    }
}
