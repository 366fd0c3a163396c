namespace Nemotron.Gym.Environments.Swe.Tests;

/// <summary>The strict patch reader and applier, and the patch similarity, on hand-made patches and on every task.</summary>
[Collection("swe")]
public sealed class DiffTests(SweHost host)
{
    private static readonly Dictionary<string, string> Tree = new()
    {
        ["pkg/a.py"] = "one\ntwo\nthree\nfour\nfive\n",
        ["pkg/b.py"] = "alpha\nbeta",
    };

    [Fact]
    public void A_patch_that_edits_creates_and_deletes_applies()
    {
        var patch = """
            diff --git a/pkg/a.py b/pkg/a.py
            --- a/pkg/a.py
            +++ b/pkg/a.py
            @@ -2,3 +2,3 @@
             two
            -three
            +THREE
             four
            diff --git a/pkg/b.py b/pkg/b.py
            deleted file mode 100644
            --- a/pkg/b.py
            +++ /dev/null
            @@ -1,2 +0,0 @@
            -alpha
            -beta
            \ No newline at end of file
            diff --git a/pkg/c.py b/pkg/c.py
            new file mode 100644
            --- /dev/null
            +++ b/pkg/c.py
            @@ -0,0 +1 @@
            +x = 1

            """.Replace("\r\n", "\n");
        var result = UnifiedDiff.Apply(Tree, patch);
        Assert.Equal("one\ntwo\nTHREE\nfour\nfive\n", result["pkg/a.py"]);
        Assert.False(result.ContainsKey("pkg/b.py"));
        Assert.Equal("x = 1\n", result["pkg/c.py"]);
        Assert.Equal(["pkg/a.py:-three", "pkg/a.py:+THREE", "pkg/b.py:-alpha", "pkg/b.py:-beta", "pkg/c.py:+x = 1"], UnifiedDiff.ChangedLines(patch));
    }

    [Fact]
    public void A_hunk_that_does_not_match_is_refused_naming_file_and_line()
    {
        var patch = "--- a/pkg/a.py\n+++ b/pkg/a.py\n@@ -3,1 +3,1 @@\n-tree\n+THREE\n";
        var e = Assert.Throws<PatchException>(() => UnifiedDiff.Apply(Tree, patch));
        Assert.Contains("pkg/a.py", e.Message);
        Assert.Contains("line 3", e.Message);
    }

    [Theory]
    [InlineData("../etc/passwd")]
    [InlineData("/etc/passwd")]
    [InlineData("pkg/../../x")]
    public void Paths_outside_the_tree_are_refused(string path)
    {
        var patch = $"--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n+x\n";
        var e = Assert.Throws<PatchException>(() => UnifiedDiff.Parse(patch));
        Assert.Contains("refused path", e.Message);
    }

    [Fact]
    public void A_patch_whose_git_header_disagrees_with_its_file_lines_is_refused()
    {
        var patch = "diff --git a/pkg/a.py b/pkg/a.py\n--- a/pkg/b.py\n+++ b/pkg/b.py\n@@ -1 +1 @@\n-alpha\n+gamma\n";
        Assert.Throws<PatchException>(() => UnifiedDiff.Parse(patch));
    }

    [Fact]
    public void Similarity_is_one_for_the_gold_patch_zero_for_empty_and_between_for_partial()
    {
        foreach (var task in host.Tasks)
        {
            Assert.Equal(1, PatchSimilarity.Score(task.GoldPatch, task.GoldPatch));
            Assert.Equal(0, PatchSimilarity.Score("", task.GoldPatch));
            // The bug patch undoes nothing: it touches the same lines the other way round.
            Assert.True(PatchSimilarity.Score(task.BugPatch, task.GoldPatch) < 1);
        }
    }

    [Fact]
    public void Every_task_rebuilds_its_trees_and_its_gold_patch_undoes_its_bug()
    {
        foreach (var task in host.Tasks)
        {
            var start = host.Env.Repositories.Starting(task);
            var fixedTree = UnifiedDiff.Apply(start, task.GoldPatch);
            Assert.Equal(host.Env.Repositories.Clean(task.Repo), fixedTree);
            Assert.NotEmpty(host.Env.Repositories.HiddenTests(task));
            Assert.DoesNotContain(start.Keys, k => k.StartsWith("tests/", StringComparison.Ordinal));
            Assert.Empty(host.Env.ValidateTask(host.Env.ToTaskRecord(task)));
        }
    }
}
