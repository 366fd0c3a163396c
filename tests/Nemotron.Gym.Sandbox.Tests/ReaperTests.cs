using Docker.DotNet.Models;
using Nemotron.Gym.Sandbox;

namespace Nemotron.Gym.Sandbox.Tests;

/// <summary>The docker reaper against the real engine: a dead process's container goes, a live one's stays.</summary>
[Collection(SandboxCollection.Name)]
public sealed class ReaperTests(SandboxFixture fixture)
{
    private async Task<string> CreateLabelled(string name)
    {
        var image = SandboxImage.Load(fixture.Settings.ImagesDirectory, "python")!;
        await DockerSandboxService.EnsureImportedAsync(fixture.DockerClient, image, default);
        var created = await fixture.DockerClient.Containers.CreateContainerAsync(new CreateContainerParameters
        {
            Name = name,
            Image = image.DockerImage,
            Cmd = ["sleep", "infinity"],
            Labels = new Dictionary<string, string> { [DockerSandboxService.SiloLabel] = SandboxFixture.SiloName },
            HostConfig = new HostConfig { NetworkMode = "none", Init = true },
        });
        await fixture.DockerClient.Containers.StartContainerAsync(created.ID, new ContainerStartParameters());
        return created.ID;
    }

    private async Task<bool> Exists(string id) =>
        (await fixture.DockerClient.Containers.ListContainersAsync(new ContainersListParameters { All = true })).Any(c => c.ID == id);

    [Fact]
    public async Task Containers_of_ended_processes_are_removed_and_those_of_live_ones_kept()
    {
        // A pid beyond pid_max belongs to no process; the canary is alive.
        var orphan = await CreateLabelled($"ngym-{SandboxFixture.SiloName}-99999999-1");
        var alive = await CreateLabelled($"ngym-{SandboxFixture.SiloName}-{fixture.CanaryPid}-1");
        try
        {
            var removed = await fixture.Docker.ReapAsync();
            Assert.Equal(1, removed);
            Assert.False(await Exists(orphan), "the container of an ended process was left");
            Assert.True(await Exists(alive), "the container of a live process was removed");
        }
        finally
        {
            await fixture.DockerClient.Containers.RemoveContainerAsync(alive, new ContainerRemoveParameters { Force = true });
            if (await Exists(orphan)) await fixture.DockerClient.Containers.RemoveContainerAsync(orphan, new ContainerRemoveParameters { Force = true });
        }
        await fixture.AssertHostUntouched();
    }
}
