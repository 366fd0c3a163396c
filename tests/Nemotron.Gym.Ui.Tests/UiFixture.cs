using System.Net.Http;
using Microsoft.Playwright;
using Nemotron.Gym.Cli.Tests;
using Nemotron.Gym.Kernels.Cpu;
using Nemotron.Gym.Model.Checkpoints;
using Nemotron.Gym.Model;
using Nemotron.Gym.Model.Tokenization;
using Nemotron.Gym.Store;
using Nemotron.Gym.TestSupport;

namespace Nemotron.Gym.Ui.Tests;

/// <summary>
/// A store filled by a real, short `gym rl` run (a tiny random model, two environments, three steps), served by a real
/// `gym ui` process, and Debian's Chromium driven by Playwright. Shared by every test of the collection.
/// </summary>
public sealed class UiFixture : IAsyncLifetime
{
    public const string RunId = "uirun";
    public string Dir { get; } = Directory.CreateTempSubdirectory("gym-ui-").FullName;
    public string RunFolder => Path.Combine(Dir, "runs", RunId);
    public string StorePath => Path.Combine(RunFolder, "rollouts.db");
    /// <summary>Screenshots of each page, under the test output so CI keeps them with the results.</summary>
    public string Screenshots { get; } = Path.Combine(AppContext.BaseDirectory, "screenshots");
    public string BaseUrl { get; private set; } = "";
    public IBrowser Browser { get; private set; } = null!;
    public HttpClient Http { get; } = new();

    private IPlaywright? _playwright;
    private GymProcess.Child? _ui;

    public async ValueTask InitializeAsync()
    {
        Directory.CreateDirectory(Screenshots);
        string init = Path.Combine(Dir, "init");
        using (var backend = new CpuBackend())
        using (var model = new GptModel(backend, new GptConfig(Layers: 1, Width: 32, Heads: 2, Context: 256)))
        {
            model.InitializeWeights(3);
            Checkpoint.Save(init, model, new ByteTokenizer());
        }
        string config = Path.Combine(Dir, "rl.yaml");
        File.WriteAllText(config, $"""
            out: {RunFolder}
            init: {init}
            device: cpu
            seed: 7
            environments:
              - {"{"}name: math, weight: 2, settings: {"{"}difficulty: "1"{"}"}, train_tasks: 20, eval_tasks: 2{"}"}
              - {"{"}name: reasoning, weight: 1, settings: {"{"}difficulty: "1"{"}"}, train_tasks: 20, eval_tasks: 2{"}"}
            cluster: {"{"}silo_port: {Ports.Free()}, gateway_port: {Ports.Free()}{"}"}
            grpo: {"{"}tasks_per_step: 3, group_size: 3, dynamic_filtering: false{"}"}
            rollout: {"{"}max_new_tokens: 12{"}"}
            train: {"{"}steps: 3, eval_every: 3, checkpoint_every: 3, warmup_steps: 0{"}"}
            """);
        var (code, output) = GymProcess.Run(Dir, "rl", "--config", config);
        if (code != 0) throw new InvalidOperationException($"gym rl failed ({code}):\n{output}");

        int port = Ports.Free();
        _ui = GymProcess.Start(Dir, "ui", "--store", RunFolder, "--port", port.ToString());
        await _ui.WaitForAsync("serving", TimeSpan.FromSeconds(60));
        BaseUrl = $"http://127.0.0.1:{port}";

        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = "/usr/bin/chromium", Headless = true,
            Args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
    }

    /// <summary>A fresh page whose console errors, uncaught exceptions and dialogs are collected into <see cref="PageLog.Errors"/>.</summary>
    public async Task<PageLog> NewPageAsync(IBrowserContext? context = null)
    {
        var page = await (context ?? await Browser.NewContextAsync(new BrowserNewContextOptions { AcceptDownloads = true, ViewportSize = new() { Width = 1400, Height = 1000 } })).NewPageAsync();
        var log = new PageLog(page);
        page.Console += (_, m) => { if (m.Type == "error") log.Add($"console: {m.Text}"); };
        page.PageError += (_, e) => log.Add($"page error: {e}");
        page.Dialog += async (_, d) => { log.Add($"dialog: {d.Message}"); await d.DismissAsync(); };
        return log;
    }

    /// <summary>Opens a store of this run for writing (the tests that add a step).</summary>
    public Task<IRolloutStore> OpenStoreAsync() => RolloutStores.OpenAsync("sqlite:" + StorePath);

    public async ValueTask DisposeAsync()
    {
        if (Browser != null) await Browser.DisposeAsync();
        _playwright?.Dispose();
        _ui?.Dispose();
        Http.Dispose();
        try { Directory.Delete(Dir, true); } catch (IOException) { }
    }
}

/// <summary>A page and what went wrong on it.</summary>
public sealed class PageLog(IPage page)
{
    private readonly List<string> _errors = [];
    public IPage Page { get; } = page;
    public IReadOnlyList<string> Errors { get { lock (_errors) return [.. _errors]; } }
    public void Add(string error) { lock (_errors) _errors.Add(error); }
}

[CollectionDefinition(Name)]
public sealed class UiCollection : ICollectionFixture<UiFixture>
{
    public const string Name = "gym ui";
}
