using System.CommandLine;
using Nemotron.Gym.Ui;
using Spectre.Console;

namespace Nemotron.Gym.Cli;

/// <summary>
/// gym ui: the web UI over a rollout store (a run folder, a SQLite file or PostgreSQL), read-only, live while a run
/// writes. Loopback by default; any other address needs --token.
/// </summary>
internal static class UiCommand
{
    public static void AddTo(RootCommand root)
    {
        var store = new Option<string>("--store") { Description = "A run folder, its rollouts.db, sqlite:PATH or postgres:CONNECTION", DefaultValueFactory = _ => "." };
        var host = new Option<string>("--host") { Description = "Address to listen on (a non-loopback one needs --token)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port (0: any free one)", DefaultValueFactory = _ => 5080 };
        var token = new Option<string?>("--token") { Description = "Secret that every request must carry (X-Gym-Token header, Bearer, or the cookie the login form sets)" };
        var cmd = new Command("ui", "Serve the web UI over a rollout store: runs, reward curves, rollouts, groups and tokens; read-only; Ctrl-C stops.")
            { store, host, port, token };
        cmd.SetAction((parse, ct) => Cli.Run(async () =>
        {
            string target = parse.GetValue(store)!;
            if (Directory.Exists(target)) target = Path.Combine(target, "rollouts.db");
            if (!target.Contains(':') && !File.Exists(target)) throw new CliException($"{target}: no rollout store there (pass a run folder, a .db file, sqlite:PATH or postgres:CONNECTION)");
            var options = new UiOptions(target.Contains(':') ? target : "sqlite:" + target, parse.GetValue(host)!, parse.GetValue(port), parse.GetValue(token));
            await using var server = await UiServer.StartAsync(options, ct);
            AnsiConsole.MarkupLineInterpolated($"[green]serving[/] {target} at {server.Address}/ (read-only; Ctrl-C stops)");
            await server.WaitAsync(ct);
            return 0;
        }));
        root.Subcommands.Add(cmd);
    }
}
