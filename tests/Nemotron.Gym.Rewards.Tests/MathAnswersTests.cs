using Nemotron.Gym.Rewards;

namespace Nemotron.Gym.Rewards.Tests;

public class MathAnswersTests
{
    [Theory]
    [InlineData("so the result is \\boxed{\\frac{3}{4}}.", "\\frac{3}{4}", ExtractionMethod.Boxed)]
    [InlineData("first \\boxed{1} then \\boxed{2}", "2", ExtractionMethod.Boxed)]
    [InlineData("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}", ExtractionMethod.Boxed)]
    [InlineData("We compute things.\nAnswer: 42 apples.", "42 apples", ExtractionMethod.AnswerLine)]
    [InlineData("The final answer is $-7$.", "-7", ExtractionMethod.AnswerLine)]
    [InlineData("12.5", "12.5", ExtractionMethod.WholeResponse)]
    [InlineData("After adding we get 10, then doubling gives 20 in total, which is what we wanted to show here.", "20", ExtractionMethod.LastNumber)]
    [InlineData("", null, ExtractionMethod.None)]
    [InlineData("I have no idea what the question wants from me, sorry about that friend.", null, ExtractionMethod.None)]
    public void Extraction(string response, string? answer, ExtractionMethod method)
    {
        var (a, m) = MathAnswers.Extract(response);
        Assert.Equal(answer, a);
        Assert.Equal(method, m);
    }

    [Fact]
    public void UnbalancedBoxedFallsBackInsteadOfThrowing()
    {
        var (a, m) = MathAnswers.Extract("\\boxed{3 + {4} and then the value is 9 in the end after all of this work");
        Assert.Equal("9", a);
        Assert.Equal(ExtractionMethod.LastNumber, m);
    }

    [Theory]
    [InlineData("3/4", "0.75")]
    [InlineData("\\frac{3}{4}", "0.75")]
    [InlineData("\\dfrac{6}{8}", "3/4")]
    [InlineData("1,234", "1234")]
    [InlineData("50%", "0.5")]
    [InlineData("50\\%", "50")]
    [InlineData("2\\sqrt{2}", "\\sqrt{8}")]
    [InlineData("\\sqrt[3]{27}", "3")]
    [InlineData("2\\pi", "6.283185307")]
    [InlineData("\\pi/2", "\\frac{\\pi}{2}")]
    [InlineData("x = 5", "5")]
    [InlineData("12 cm", "12")]
    [InlineData("\\text{12 meters}", "12")]
    [InlineData("45^\\circ", "45")]
    [InlineData("$10", "10")]
    [InlineData("{1, 2, 3}", "\\{3,2,1\\}")]
    [InlineData("(1, -2)", "(1,-2)")]
    [InlineData("2, 3", "3, 2")]
    [InlineData("-0.5", "-\\frac{1}{2}")]
    [InlineData("2^{10}", "1024")]
    [InlineData("1.5e3", "1500")]
    [InlineData("1.5e-3", "0.0015")]
    [InlineData("\\sqrt{3} + 2", "2 + \\sqrt{3}")]
    public void EquivalentAnswers(string a, string b) => Assert.True(MathAnswers.Equivalent(a, b), $"{a} should equal {b}");

    [Theory]
    [InlineData("3/4", "0.7")]
    [InlineData("(1, 2)", "(2, 1)")]
    [InlineData("{1, 2}", "{1, 2, 3}")]
    [InlineData("1,234", "1.234")]
    [InlineData("", "0")]
    [InlineData("x + 1", "2")]
    [InlineData("5", "-5")]
    [InlineData("1/0", "0")]
    // The question's arithmetic restated is not a final answer, though it evaluates to one.
    [InlineData("15 + 14", "29")]
    [InlineData("3.5 × 7", "24.5")]
    [InlineData("3 \\times 12", "36")]
    [InlineData("1/4 + 1/4", "1/2")]
    [InlineData("30-4", "26")]
    [InlineData("6*7", "42")]
    public void DifferentAnswers(string a, string b) => Assert.False(MathAnswers.Equivalent(a, b), $"{a} should not equal {b}");

    [Fact]
    public void HostileInputIsBoundedAndNeverThrows()
    {
        string deep = new string('(', 5000) + "1" + new string(')', 5000);
        Assert.Null(MathExpression.TryEvaluate(deep));
        Assert.Null(MathExpression.TryEvaluate("10^10^10^10"));
        Assert.Null(MathExpression.TryEvaluate("9^99999"));
        Assert.False(MathAnswers.Equivalent(new string('9', 100_000), "9"));
        var huge = string.Concat(Enumerable.Repeat("\\boxed{", 10_000));
        var (a, _) = MathAnswers.Extract(huge + " 7");
        Assert.Equal("7", a);
        Assert.Null(MathExpression.TryEvaluate("\\sqrt[0]{4}"));
        Assert.Null(MathExpression.TryEvaluate("\\unknown{3}"));
    }
}
