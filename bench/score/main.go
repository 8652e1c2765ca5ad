// Command score times internal/metrics on a BEANS-Zero-sized predictions set
// and prints the figures that docs/performance.md records:
//
//  1. all 22 tasks of beans_zero_core (91,965 rows, the task mix and
//     vocabulary sizes of BEANS_ZERO.md) scored with bootstrap intervals on;
//  2. CIDEr-D over 26,468 captions with 5 references each, without and with
//     intervals.
//
// The data are generated in memory, deterministically (-seed), with
// realistic answers: mostly exact labels, some case or spelling variants,
// verbose sentences naming a label, wrong labels, empty answers and
// failures. Usage: go run ./bench/score [-resamples 1000] [-rounds 1] [-only tasks,cider]
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/beans-slurm/beans-slurm/internal/metrics"
)

type task struct {
	id, typ string
	rows    int
	labels  int
	style   string // label style: "cmn", "sci", "tax", "short"
}

// tasks is the beans_zero_core mix of BEANS_ZERO.md.
var tasks = []task{
	{"esc50", "classification", 400, 50, "short"},
	{"watkins", "classification", 339, 31, "cmn"},
	{"cbi", "classification", 3620, 264, "cmn"},
	{"humbugdb", "classification", 1859, 14, "sci"},
	{"lifestage", "classification", 466, 3, "short"},
	{"call_type", "classification", 1000, 2, "short"},
	{"unseen_species_cmn", "classification", 1255, 202, "cmn"},
	{"unseen_species_sci", "classification", 1255, 200, "sci"},
	{"unseen_species_tax", "classification", 1255, 200, "tax"},
	{"unseen_genus_cmn", "classification", 951, 105, "cmn"},
	{"unseen_genus_sci", "classification", 951, 101, "sci"},
	{"unseen_genus_tax", "classification", 951, 101, "tax"},
	{"unseen_family_cmn", "classification", 451, 40, "cmn"},
	{"unseen_family_sci", "classification", 451, 36, "sci"},
	{"unseen_family_tax", "classification", 451, 36, "tax"},
	{"zf_indiv", "classification", 1160, 2, "short"},
	{"enabirds", "detection", 4543, 34, "cmn"},
	{"hiceas", "detection", 1485, 1, "cmn"},
	{"rfcx", "detection", 10406, 24, "sci"},
	{"gibbons", "detection", 18560, 3, "short"},
	{"dcase", "detection", 13688, 18, "cmn"},
	{"captioning", "captioning", 26468, 0, ""},
}

var (
	syll  = []string{"ka", "ro", "mi", "ta", "ve", "lu", "sa", "no", "pi", "de", "ra", "go", "be", "li", "to", "ch", "wa", "ne"}
	nouns = []string{"Warbler", "Thrush", "Sparrow", "Owl", "Finch", "Wren", "Dove", "Hawk", "Frog", "Whale", "Gibbon", "Cricket", "Bat", "Tern", "Gull"}
	adjs  = []string{"Northern", "Common", "Lesser", "Great", "Spotted", "Eastern", "Western", "Little", "Red-eyed", "Golden"}
	words = []string{"a", "the", "bird", "birds", "sings", "singing", "calls", "call", "repeated", "short", "long", "high", "pitched",
		"whistle", "trill", "chirps", "in", "background", "with", "and", "noise", "wind", "rain", "frog", "croaks", "insects",
		"buzzing", "distant", "loud", "soft", "series", "of", "notes", "descending", "rising", "while", "another", "responds",
		"water", "flowing", "several", "individuals", "chorus", "at", "dawn", "harsh", "clear", "melodic", "song", "is", "heard"}
)

func word(r *rand.Rand) string {
	var b strings.Builder
	for range 2 + r.IntN(2) {
		b.WriteString(syll[r.IntN(len(syll))])
	}
	return b.String()
}

func labelSet(r *rand.Rand, n int, style string) []string {
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		var l string
		switch style {
		case "short":
			l = strings.ToUpper(word(r)[:1]) + word(r)
		case "cmn":
			l = adjs[r.IntN(len(adjs))] + " " + strings.ToUpper(word(r)[:1]) + word(r)[1:] + " " + nouns[r.IntN(len(nouns))]
		case "sci":
			l = strings.ToUpper(word(r)[:1]) + word(r)[1:] + "us " + word(r) + "a"
		case "tax":
			l = "Chordata Aves " + strings.ToUpper(word(r)[:1]) + word(r) + "iformes " + strings.ToUpper(word(r)[:1]) + word(r) + "idae " +
				strings.ToUpper(word(r)[:1]) + word(r) + " " + word(r)
		}
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

// typo changes one character.
func typo(r *rand.Rand, s string) string {
	b := []byte(s)
	b[r.IntN(len(b))] = 'a' + byte(r.IntN(26))
	return string(b)
}

func classAnswer(r *rand.Rand, labels []string, target string) (string, bool) {
	switch x := r.Float64(); {
	case x < 0.01:
		return "", true // failed
	case x < 0.02:
		return "<|eot_id|>", false // empty after cleanup
	case x < 0.55:
		return target + "<|end_of_text|>", false
	case x < 0.65:
		return strings.ToLower(target), false
	case x < 0.72:
		return typo(r, target), false
	case x < 0.80:
		return "The species in this recording is most likely the " + target + ", based on its call.", false
	default:
		return labels[r.IntN(len(labels))], false
	}
}

func caption(r *rand.Rand, n int) string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = words[r.IntN(len(words))]
	}
	return strings.ToUpper(ws[0][:1]) + strings.Join(ws, " ")[1:] + "."
}

func generate(t task, r *rand.Rand) ([]string, []metrics.Input) {
	labels := labelSet(r, t.labels, t.style)
	in := make([]metrics.Input, t.rows)
	for i := range in {
		in[i].SampleID = fmt.Sprintf("%s-%d", t.id, i)
		switch t.typ {
		case "classification":
			in[i].Target = labels[r.IntN(len(labels))]
			in[i].Answer, in[i].Failed = classAnswer(r, labels, in[i].Target)
		case "detection":
			var tgt []string
			for range r.IntN(3) {
				tgt = append(tgt, labels[r.IntN(len(labels))])
			}
			in[i].Target = "None"
			if len(tgt) > 0 {
				in[i].Target = strings.Join(tgt, ", ")
			}
			switch x := r.Float64(); {
			case x < 0.01:
				in[i].Failed = true
			case x < 0.5:
				in[i].Answer = in[i].Target
			case x < 0.7:
				in[i].Answer = "None"
			case x < 0.85:
				in[i].Answer = strings.ToLower(labels[r.IntN(len(labels))]) + ", " + typo(r, labels[r.IntN(len(labels))])
			default:
				in[i].Answer = "I can hear " + labels[r.IntN(len(labels))] + " and maybe something else"
			}
		case "captioning":
			in[i].Target = caption(r, 8+r.IntN(10))
			if r.Float64() < 0.01 {
				in[i].Failed = true
			} else {
				in[i].Answer = caption(r, 6+r.IntN(12)) + "<|eot_id|>"
			}
		}
	}
	return labels, in
}

func main() {
	resamples := flag.Int("resamples", 1000, "bootstrap resamples")
	rounds := flag.Int("rounds", 1, "timed rounds (the best is reported)")
	seed := flag.Uint64("seed", 1, "data seed")
	only := flag.String("only", "tasks,cider", "comma-separated parts to run: tasks, cider")
	flag.Parse()
	fmt.Printf("GOMAXPROCS=%d NumCPU=%d %s\n", runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.Version())
	opts := metrics.DefaultOptions()
	opts.Bootstrap = *resamples

	if strings.Contains(*only, "tasks") {
		r := rand.New(rand.NewPCG(*seed, 1))
		type gen struct {
			t      task
			labels []string
			in     []metrics.Input
		}
		var data []gen
		rows := 0
		for _, t := range tasks {
			l, in := generate(t, r)
			data = append(data, gen{t, l, in})
			rows += len(in)
		}
		best := time.Duration(1 << 62)
		perType := map[string]time.Duration{}
		for range *rounds {
			start := time.Now()
			pt := map[string]time.Duration{}
			for _, g := range data {
				s := time.Now()
				res, err := metrics.ScoreWith(g.t.typ, g.labels, g.in, opts)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				pt[g.t.typ] += time.Since(s)
				if len(res.Intervals) == 0 && *resamples > 0 {
					fmt.Fprintln(os.Stderr, "no intervals for", g.t.id)
					os.Exit(1)
				}
				if *rounds == 1 || best == 1<<62 {
					h := res.Headline
					fmt.Printf("  %-20s %-14s n=%-6d %s=%.4f [%.4f, %.4f]\n", g.t.id, g.t.typ, res.N, h, res.Metrics[h], res.Intervals[h].Low, res.Intervals[h].High)
				}
			}
			if d := time.Since(start); d < best {
				best, perType = d, pt
			}
		}
		fmt.Printf("tasks: %d rows, %d resamples: %.2f s (classification %.2f s, detection %.2f s, captioning %.2f s)\n",
			rows, *resamples, best.Seconds(), perType["classification"].Seconds(), perType["detection"].Seconds(), perType["captioning"].Seconds())
	}

	if strings.Contains(*only, "cider") {
		r := rand.New(rand.NewPCG(*seed, 2))
		const n = 26468
		cands := make([]string, n)
		refs := make([][]string, n)
		for i := range cands {
			cands[i] = caption(r, 6+r.IntN(12))
			for range 5 {
				refs[i] = append(refs[i], caption(r, 8+r.IntN(10)))
			}
		}
		for _, b := range []int{0, *resamples} {
			best := time.Duration(1 << 62)
			var corpus float64
			var iv metrics.Interval
			for range *rounds {
				start := time.Now()
				corpus, _, iv = metrics.CIDErDBootstrap(cands, refs, b, 0, 0.95, 0)
				best = min(best, time.Since(start))
			}
			fmt.Printf("cider_d: %d captions × 5 refs, %d resamples: %.2f s (CIDEr-D %.4f [%.4f, %.4f])\n", n, b, best.Seconds(), corpus, iv.Low, iv.High)
		}
	}
}
