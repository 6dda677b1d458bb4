// Package timing records and reports how long the mini-broker takes to move
// a visit of alerts from the producer, through the filters, to the end
// consumers.
//
// Every stage publishes one JSON Event per Kafka message on a timing topic:
// the producer one "produce" event per visit, each filter one "filter"
// event per visit, and each end consumer one "consume" event per alert it
// receives. Build turns a collection of events into a Report with the
// figures of the 2018 prototype's write-up:
//
//   - producer send time of a visit: produce.End - produce.Start;
//   - filter lag: filter.End - produce.End, from the producer having every
//     alert of the visit acknowledged to the filter having processed the
//     visit's last alert (it may be slightly negative when clocks are
//     skewed; the sign is kept);
//   - consumer latency: the arrival of the visit's highest-ranked filtered
//     alert at the consumer (the 20th, or the last one when fewer were
//     selected) minus produce.Start.
//   - filter done: filter.End - produce.Start, from the producer starting
//     the visit to the filter having processed its last alert (mean and
//     max; the max is the worst visit's last filter, which must stay under
//     the visit interval to keep up). No 2018 figure is recorded for it.
//
// A report is written as a fixed-width text table (WriteTable), as JSON
// (WriteJSON) or as a self-contained HTML page with SVG plots (WriteHTML),
// each showing the original's figures beside the measured ones.
package timing
