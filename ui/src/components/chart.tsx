/**
 * A uPlot time-series chart: created once per mount, fed new data in place (uPlot redraws a few
 * thousand points in well under a millisecond), resized with its container.
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface Series {
  readonly label: string;
  readonly color: string;
  readonly bars?: boolean;
}

export function TimeChart({
  title,
  series,
  data,
  height = 220,
}: {
  title: string;
  series: readonly Series[];
  /** [x (unix seconds), ...one array per series], as uPlot takes it. */
  data: uPlot.AlignedData;
  height?: number;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  useEffect(() => {
    const element = box.current;
    if (element === null) return;
    const bars = uPlot.paths.bars?.({ size: [0.8, 40] });
    const options: uPlot.Options = {
      width: Math.max(200, element.clientWidth),
      height,
      series: [
        {},
        ...series.map((item) => ({
          label: item.label,
          stroke: item.color,
          width: 2,
          ...(item.bars === true && bars !== undefined ? { fill: `${item.color}55`, paths: bars } : {}),
        })),
      ],
      axes: [{}, { size: 50 }],
      legend: { live: false },
    };
    const chart = new uPlot(options, data, element);
    plot.current = chart;
    const observer = new ResizeObserver(() => {
      chart.setSize({ width: Math.max(200, element.clientWidth), height });
    });
    observer.observe(element);
    return () => {
      observer.disconnect();
      chart.destroy();
      plot.current = undefined;
    };
    // Built once per set of series; data flows in through the effect below.
  }, [series.map((item) => item.label).join('|'), height]);
  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} role="img" aria-label={title} />
    </figure>
  );
}
