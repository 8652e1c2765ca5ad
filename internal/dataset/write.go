package dataset

import (
	"fmt"

	"github.com/beans-slurm/beans-slurm/internal/atomicfile"

	"github.com/parquet-go/parquet-go"

	"github.com/beans-slurm/beans-slurm/internal/demo"
)

// parquetRow is a row in the BEANS-Zero Parquet schema, as pyarrow writes it: nullable string
// columns and `audio` a nullable LIST of non-null DOUBLE in the three-level layout
// audio.list.element.
type parquetRow struct {
	ID              string    `parquet:"id,optional,snappy"`
	DatasetName     string    `parquet:"dataset_name,optional,snappy"`
	Task            string    `parquet:"task,optional,snappy"`
	Audio           []float64 `parquet:"audio,optional,list,snappy"`
	Metadata        string    `parquet:"metadata,optional,snappy"`
	Instruction     string    `parquet:"instruction,optional,snappy"`
	InstructionText string    `parquet:"instruction_text,optional,snappy"`
	Output          string    `parquet:"output,optional,snappy"`
	SourceDataset   string    `parquet:"source_dataset,optional,snappy"`
	FileName        string    `parquet:"file_name,optional,snappy"`
	License         string    `parquet:"license,optional,snappy"`
	CreatedAt       string    `parquet:"created_at,optional,snappy"`
}

// dictRow is parquetRow with dictionary-encoded columns, audio included, as pyarrow writes
// them while the dictionaries stay small. It exists so tests exercise the reader's dictionary
// path.
type dictRow struct {
	ID              string    `parquet:"id,optional,dict,snappy"`
	DatasetName     string    `parquet:"dataset_name,optional,dict,snappy"`
	Task            string    `parquet:"task,optional,dict,snappy"`
	Audio           []float64 `parquet:"audio,optional,list,snappy" parquet-element:",dict"`
	Metadata        string    `parquet:"metadata,optional,dict,snappy"`
	Instruction     string    `parquet:"instruction,optional,dict,snappy"`
	InstructionText string    `parquet:"instruction_text,optional,dict,snappy"`
	Output          string    `parquet:"output,optional,dict,snappy"`
	SourceDataset   string    `parquet:"source_dataset,optional,dict,snappy"`
	FileName        string    `parquet:"file_name,optional,dict,snappy"`
	License         string    `parquet:"license,optional,dict,snappy"`
	CreatedAt       string    `parquet:"created_at,optional,dict,snappy"`
}

func toParquetRow(r demo.Row) parquetRow {
	return parquetRow{
		ID: r.ID, DatasetName: r.DatasetName, Task: r.Task, Audio: r.Audio, Metadata: r.Metadata,
		Instruction: r.Instruction, InstructionText: r.InstructionText, Output: r.Output,
		SourceDataset: r.SourceDataset, FileName: r.FileName, License: r.License, CreatedAt: r.CreatedAt,
	}
}

// WriteParquet writes the rows that rows yields to a Parquet file at path in the BEANS-Zero
// schema (see parquetRow), snappy-compressed, in row groups of rowGroupRows rows (<= 0: 64).
// demo.Row is the row type: it carries every BEANS-Zero column. The file appears atomically:
// rows are written to a temporary file in the same directory, which is renamed to path only
// when complete. A writer buffers one row group in memory. opts are parquet-go's writer
// options (benchmarks use them to write pages as pyarrow does: DataPageVersion(1)).
func WriteParquet(path string, rows func(yield func(demo.Row) error) error, rowGroupRows int, opts ...parquet.WriterOption) error {
	return writeParquet(path, rows, rowGroupRows, false, opts...)
}

// writeParquet is WriteParquet, with dictionary-encoded columns when dict is set and extra
// writer options (tests use them to force small pages).
func writeParquet(path string, rows func(yield func(demo.Row) error) error, rowGroupRows int, dict bool, opts ...parquet.WriterOption) (err error) {
	opts = append([]parquet.WriterOption{parquet.Compression(&parquet.Snappy)}, opts...)
	if rowGroupRows <= 0 {
		rowGroupRows = 64
	}
	tmp, err := atomicfile.Create(path)
	if err != nil {
		return err
	}
	defer tmp.Abort()
	var (
		write func(demo.Row) error
		flush func() error
		close func() error
	)
	if dict {
		w := parquet.NewGenericWriter[dictRow](tmp, opts...)
		write = func(r demo.Row) error { _, err := w.Write([]dictRow{dictRow(toParquetRow(r))}); return err }
		flush, close = w.Flush, w.Close
	} else {
		w := parquet.NewGenericWriter[parquetRow](tmp, opts...)
		write = func(r demo.Row) error { _, err := w.Write([]parquetRow{toParquetRow(r)}); return err }
		flush, close = w.Flush, w.Close
	}
	n := 0
	err = rows(func(r demo.Row) error {
		if err := write(r); err != nil {
			return fmt.Errorf("write %s row %d (id %s): %w", path, n, r.ID, err)
		}
		n++
		if n%rowGroupRows == 0 {
			if err := flush(); err != nil {
				return fmt.Errorf("write %s row group %d: %w", path, n/rowGroupRows-1, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := close(); err != nil {
		return fmt.Errorf("write %s: finish file: %w", path, err)
	}
	return tmp.Commit()
}
