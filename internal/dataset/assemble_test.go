package dataset

import (
	"slices"
	"testing"
)

// levelsOf flattens rows into (values, repetition, definition) for an optional list of
// optional doubles (max definition level 3): a nil row is a null list, an empty row an empty
// list, and NaN-free values; nullAt marks elements (row, index) written as null instead.
func levelsOf(rows [][]float64, nullAt map[[2]int]bool) (vals []float64, rep, def []byte) {
	for r, row := range rows {
		switch {
		case row == nil:
			rep, def = append(rep, 0), append(def, 0)
		case len(row) == 0:
			rep, def = append(rep, 0), append(def, 1)
		}
		for i, v := range row {
			rl := byte(1)
			if i == 0 {
				rl = 0
			}
			rep = append(rep, rl)
			if nullAt[[2]int{r, i}] {
				def = append(def, 2)
				continue
			}
			def = append(def, 3)
			vals = append(vals, v)
		}
	}
	return vals, rep, def
}

func TestAssembler(t *testing.T) {
	rows := [][]float64{{1, 2, 3}, nil, {4}, {}, {5, 6, 7, 8, 9}, {10, 11}}
	tests := []struct {
		name   string
		cuts   []int // level indexes where pages split
		mask   []bool
		nullAt map[[2]int]bool
		want   [][]float64
		states []rowState // nil: rows 1 (null list) and 3 (empty list) of the unmasked rows
	}{
		{"one page", nil, nil, nil, [][]float64{{1, 2, 3}, {}, {4}, {}, {5, 6, 7, 8, 9}, {10, 11}}, nil},
		{"pages at row starts", []int{3, 5}, nil, nil, [][]float64{{1, 2, 3}, {}, {4}, {}, {5, 6, 7, 8, 9}, {10, 11}}, nil},
		{"rows across pages", []int{1, 2, 8, 9, 10}, nil, nil, [][]float64{{1, 2, 3}, {}, {4}, {}, {5, 6, 7, 8, 9}, {10, 11}}, nil},
		{"every level a page", []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, nil, nil, [][]float64{{1, 2, 3}, {}, {4}, {}, {5, 6, 7, 8, 9}, {10, 11}}, nil},
		{"mask", []int{2, 7}, []bool{false, true, false, false, true, true}, nil, [][]float64{{}, {5, 6, 7, 8, 9}, {10, 11}},
			[]rowState{{null: true}, {}, {}}},
		{"null elements counted", []int{6, 7}, nil, map[[2]int]bool{{0, 1}: true, {4, 0}: true, {4, 4}: true},
			[][]float64{{1, 3}, {}, {4}, {}, {6, 7, 8}, {10, 11}},
			[]rowState{{nullElems: 1}, {null: true}, {}, {}, {nullElems: 2}, {}}},
		{"mask with null and empty", []int{4}, []bool{false, true, false, true, false, false}, nil, [][]float64{{}, {}},
			[]rowState{{null: true}, {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vals, rep, def := levelsOf(rows, tt.nullAt)
			mask := tt.mask
			if mask == nil {
				mask = []bool{true, true, true, true, true, true}
			}
			var got [][]float64
			var states []rowState
			var buf []float64
			a := assembler{maxDef: 3, repDef: 2, mask: mask, row: -1, buf: &buf, emit: func(_ int, audio []float64, st rowState) error {
				got = append(got, append([]float64{}, audio...))
				states = append(states, st)
				return nil
			}}
			cuts := append(append([]int{0}, tt.cuts...), len(rep))
			vi := 0
			for k := 0; k+1 < len(cuts); k++ {
				lo, hi := cuts[k], cuts[k+1]
				n := 0
				for _, d := range def[lo:hi] {
					if d == 3 {
						n++
					}
				}
				// Each page gets its own copy, clobbered after use, as released pages are.
				pv := slices.Clone(vals[vi : vi+n])
				if err := a.page(pv, rep[lo:hi], def[lo:hi]); err != nil {
					t.Fatal(err)
				}
				for i := range pv {
					pv[i] = -1
				}
				vi += n
			}
			if err := a.finish(); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			wantStates := tt.states
			if wantStates == nil {
				wantStates = []rowState{{}, {null: true}, {}, {}, {}, {}}
			}
			for i := range got {
				if !slices.Equal(got[i], tt.want[i]) {
					t.Errorf("row %d: %v, want %v", i, got[i], tt.want[i])
				}
				if states[i] != wantStates[i] {
					t.Errorf("row %d: state %+v, want %+v", i, states[i], wantStates[i])
				}
			}
		})
	}
}

func TestAssemblerErrors(t *testing.T) {
	tests := []struct {
		name     string
		vals     []float64
		rep, def []byte
		rows     int
	}{
		{"levels differ", []float64{1}, []byte{0}, []byte{3, 3}, 1},
		{"too few values", []float64{1}, []byte{0, 1}, []byte{3, 3}, 1},
		{"too many rows", []float64{1, 2}, []byte{0, 0}, []byte{3, 3}, 1},
		{"starts mid-row", []float64{1}, []byte{1}, []byte{3}, 1},
		{"too few rows", []float64{1}, []byte{0}, []byte{3}, 2},
	}
	for _, tt := range tests {
		var buf []float64
		a := assembler{maxDef: 3, repDef: 2, mask: make([]bool, tt.rows), row: -1, buf: &buf, emit: func(int, []float64, rowState) error { return nil }}
		err := a.page(tt.vals, tt.rep, tt.def)
		if err == nil {
			err = a.finish()
		}
		if err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}
