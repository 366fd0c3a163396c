using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Nemotron.Gym.Grains;
using Spectre.Console;

namespace Nemotron.Gym.Cli;

/// <summary>
/// gym silo: a worker silo that joins a cluster whose membership is in PostgreSQL and serves episodes and
/// environments for the runs of that cluster (`gym rl` with `cluster: {membership: postgres}` is the trainer's
/// silo). It loads its own plugins, so every worker needs the environments the runs use. Ctrl-C leaves the
/// cluster gracefully: its episodes are replayed on the other silos.
/// </summary>
internal static class SiloCommand
{
    public static void AddTo(RootCommand root)
    {
        var postgres = new Option<string>("--postgres") { Description = "PostgreSQL connection string of the cluster's membership (the same as the run's cluster.postgres)", Required = true };
        var clusterId = new Option<string>("--cluster-id") { Description = "The cluster's id (the run's cluster.cluster_id)", DefaultValueFactory = _ => "nemotron-gym" };
        var siloPort = new Option<int>("--silo-port") { Description = "Silo-to-silo port", DefaultValueFactory = _ => 11111 };
        var gatewayPort = new Option<int>("--gateway-port") { Description = "Client gateway port", DefaultValueFactory = _ => 30000 };
        var address = new Option<string>("--address") { Description = "Address the other silos reach this one at: IP, host name or auto", DefaultValueFactory = _ => "auto" };
        var plugins = new Option<string[]>("--plugins") { Description = "Extra plugin folders (repeatable), beside the built-in environments" };
        var sandbox = new Option<string?>("--sandbox") { Description = "The sandbox pool's backend for this silo's environments: bwrap, docker or none (default: bwrap when this host can run it)" };
        var dockerEndpoint = new Option<string?>("--docker-endpoint") { Description = "With --sandbox docker: the engine's endpoint" };
        var tlsCertificate = new Option<string>("--tls-certificate") { Description = "This silo's TLS certificate: PEM (with --tls-key) or .pfx/.p12 (the run's cluster.tls_certificate)", DefaultValueFactory = _ => "" };
        var tlsKey = new Option<string>("--tls-key") { Description = "The PEM certificate's private key (cluster.tls_key)", DefaultValueFactory = _ => "" };
        var tlsCa = new Option<string>("--tls-ca") { Description = "CA certificate (PEM) that peers' certificates must chain to; without it peers must show this silo's certificate (cluster.tls_ca)", DefaultValueFactory = _ => "" };
        var judgeUrl = new Option<string?>("--judge-url") { Description = "OpenAI-compatible base URL of the judge that environments on this silo use (the run's judge.base_url); none without it" };
        var judgeModel = new Option<string?>("--judge-model") { Description = "The judge's model name (judge.model)" };
        var judgeKeyEnv = new Option<string?>("--judge-api-key-env") { Description = "Environment variable that holds the judge's API key (judge.api_key_env)" };
        var judgeConcurrency = new Option<int?>("--judge-concurrency") { Description = "Judge calls at once from this silo (judge.max_concurrency)" };
        var insecure = new Option<bool>("--insecure") { Description = "Listen beyond loopback without TLS: anyone who reaches the ports can join or call grains" };
        var cmd = new Command("silo", "Join a PostgreSQL-membership cluster as a worker silo that serves episodes and environments; Ctrl-C leaves.")
            { postgres, clusterId, siloPort, gatewayPort, address, plugins, sandbox, dockerEndpoint, judgeUrl, judgeModel, judgeKeyEnv, judgeConcurrency, tlsCertificate, tlsKey, tlsCa, insecure };
        cmd.SetAction((parse, ct) => Cli.Run(async () =>
        {
            var options = new GymSiloOptions
            {
                Membership = "postgres", Postgres = parse.GetValue(postgres)!, ClusterId = parse.GetValue(clusterId)!,
                SiloPort = parse.GetValue(siloPort), GatewayPort = parse.GetValue(gatewayPort), Address = parse.GetValue(address)!,
                TlsCertificate = parse.GetValue(tlsCertificate)!, TlsKey = parse.GetValue(tlsKey)!, TlsCa = parse.GetValue(tlsCa)!, Insecure = parse.GetValue(insecure),
            };
            if (options.Check() is { } bad) throw new CliException($"--{bad.Key.Replace('_', '-')}: {bad.Problem}");
            if (options.SiloPort is < 1 or > 65535) throw new CliException($"--silo-port: expected 1-65535, got {options.SiloPort}");
            if (options.GatewayPort is < 1 or > 65535) throw new CliException($"--gateway-port: expected 1-65535, got {options.GatewayPort}");
            options.PluginFolders.AddRange(parse.GetValue(plugins) ?? []);
            options.Sandbox = SandboxCommands.SiloSandboxFromCommandLine(parse.GetValue(sandbox), parse.GetValue(dockerEndpoint), $"silo-{options.SiloPort}");
            // The same judge as the run's `judge:` section, so rlhf episodes placed here are judged like the trainer's.
            if (parse.GetValue(judgeUrl) is { } url)
            {
                var judge = new Nemotron.Gym.Judges.JudgeSettings { BaseUrl = url };
                if (parse.GetValue(judgeModel) is { } model) judge.Model = model;
                if (parse.GetValue(judgeKeyEnv) is { } keyEnv) judge.ApiKeyEnv = keyEnv;
                if (parse.GetValue(judgeConcurrency) is { } concurrency) judge.MaxConcurrency = concurrency;
                if (judge.Check() is { } badJudge) throw new CliException($"--judge-{badJudge.Key switch { "base_url" => "url", "max_concurrency" => "concurrency", var k => k.Replace('_', '-') }}: {badJudge.Problem}");
                options.Judge = judge;
            }
            else if (parse.GetValue(judgeModel) is not null || parse.GetValue(judgeKeyEnv) is not null || parse.GetValue(judgeConcurrency) is not null)
                throw new CliException("--judge-model, --judge-api-key-env and --judge-concurrency need --judge-url (the judge's endpoint)");
            var at = GymSilo.AdvertisedAddress(options.Address);

            IHost silo;
            try { silo = await GymSilo.StartAsync(options, ct); }
            catch (ArgumentException) { throw; } // a setting refused before anything started: its own message names it
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new CliException($"the silo at {at}:{options.SiloPort} could not join cluster '{options.ClusterId}': {e.GetBaseException().Message}");
            }
            try
            {
                if (silo.Services.GetService<SiloSandbox>() is { } siloSandbox)
                {
                    if (await siloSandbox.Ready is { } sandboxPool)
                        AnsiConsole.MarkupLineInterpolated($"sandbox pool: {siloSandbox.Settings.Backend}, {sandboxPool.Concurrency} at once; health probe {siloSandbox.Probe!.WallTime.TotalMilliseconds:0} ms");
                    else AnsiConsole.MarkupLineInterpolated($"[yellow]no sandbox[/] on this silo: {siloSandbox.Unavailable}");
                }
                if (options.Judge is { Enabled: true } j) AnsiConsole.MarkupLineInterpolated($"judge: {j.Model} at {j.BaseUrl}, {j.MaxConcurrency} calls at once");
                var pool = silo.Services.GetRequiredService<EnvironmentPool>();
                var (envs, errors) = pool.Plugins;
                foreach (var err in errors) AnsiConsole.MarkupLineInterpolated($"[yellow]plugin not loaded[/]: {err.Source}: {err.Error}");
                var grains = silo.Services.GetRequiredService<IGrainFactory>();
                var hosts = await grains.GetGrain<IManagementGrain>(0).GetHosts(onlyActive: true);
                AnsiConsole.MarkupLineInterpolated(
                    $"[green]joined[/] cluster '{options.ClusterId}' at {at}:{options.SiloPort} ({hosts.Count} active silos; {(options.TlsCertificate.Length > 0 ? "mutual TLS" : "no TLS")}); environments: {string.Join(", ", envs.Select(e => e.Descriptor.Name).Order(StringComparer.Ordinal))}; Ctrl-C leaves");
                try { await Task.Delay(Timeout.Infinite, ct); }
                catch (OperationCanceledException) { }
                AnsiConsole.MarkupLine("leaving the cluster ...");
            }
            finally
            {
                await silo.StopAsync(CancellationToken.None);
                silo.Dispose();
            }
            AnsiConsole.MarkupLine("[green]left[/] the cluster");
            return 0;
        }));
        root.Subcommands.Add(cmd);
    }
}
