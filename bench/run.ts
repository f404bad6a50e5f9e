// `npm run bench`: every benchmark, printed as markdown tables. Ratios are against peers measured in this run.
import { runOpsBench } from "./ops.js";

runOpsBench();
