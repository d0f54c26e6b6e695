/* synth_words.c -- the invented catalogue's names: 21 departments, 134 aisles (each with a
 * few nouns), brands, adjectives and sizes, and the product name builder. Our own word lists
 * (nothing is taken from the Instacart files). */
#include "synth.h"

#include <assert.h>
#include <string.h>

static const char *const depts[SY_N_DEPTS] = {
    "frozen foods",       "miscellaneous",    "bakery",        "fresh produce",
    "beer wine spirits",  "world foods",      "drinks",        "pet supplies",
    "pasta grains",       "bulk bins",        "health beauty", "meat fish",
    "pantry staples",     "breakfast cereal", "canned jarred", "dairy eggs cheese",
    "cleaning household", "baby care",        "snacks sweets", "deli prepared",
    "unsorted",
};

/* "aisle name=Noun|Noun|..." grouped by department index. */
static const struct {
    int dept;
    const char *spec;
} aisles[SY_N_AISLES] = {
    {0, "frozen meals=Mac and Cheese Bowl|Chicken Enchiladas|Beef Lasagna|Burrito"},
    {0, "frozen pizza=Pepperoni Pizza|Cheese Pizza|Flatbread Pizza|Pizza Bites"},
    {0, "ice cream novelties=Ice Cream|Frozen Yogurt|Ice Cream Sandwiches|Fruit Bars"},
    {0, "frozen vegetables=Peas|Sweet Corn|Broccoli Florets|Stir Fry Vegetables"},
    {0, "frozen fruit=Mango Chunks|Blueberries|Strawberries|Cherries"},
    {0, "frozen breakfast=Waffles|Breakfast Sandwiches|Pancakes|Hash Browns"},
    {0, "frozen appetizers=Dumplings|Spring Rolls|Chicken Nuggets|Mozzarella Sticks"},
    {0, "frozen desserts=Cheesecake|Pie Crust|Sorbet|Cream Puffs"},
    {0, "frozen seafood=Shrimp|Salmon Fillets|Fish Sticks|Scallops"},
    {1, "gift wrap cards=Greeting Card|Gift Bag|Wrapping Paper|Ribbon"},
    {1, "seasonal items=Candles|Party Cups|Napkins|Birthday Candles"},
    {1, "assorted goods=Reusable Bag|Lunch Box|Ice Pack|Water Bottle"},
    {2, "sliced bread=Sandwich Bread|Sourdough Bread|Rye Bread|Multigrain Bread"},
    {2, "bagels muffins=Bagels|English Muffins|Muffins|Croissants"},
    {2, "tortillas flatbreads=Flour Tortillas|Corn Tortillas|Pita Bread|Naan"},
    {2, "cakes pies=Pound Cake|Apple Pie|Cupcakes|Brownies"},
    {2, "cookies pastries=Danish|Cinnamon Rolls|Scones|Biscotti"},
    {2, "rolls buns=Hamburger Buns|Dinner Rolls|Hot Dog Buns|Brioche Buns"},
    {3, "fresh fruit=Bananas|Apples|Lemons|Avocados|Oranges|Grapes"},
    {3, "fresh vegetables=Carrots|Onions|Cucumbers|Tomatoes|Potatoes|Zucchini"},
    {3, "packaged salads=Baby Spinach|Spring Mix|Romaine Hearts|Kale Salad"},
    {3, "fresh herbs=Cilantro|Basil|Parsley|Ginger Root|Garlic"},
    {3, "mushrooms=White Mushrooms|Baby Bella Mushrooms|Shiitake Mushrooms"},
    {3, "berries=Strawberries|Blueberries|Raspberries|Blackberries"},
    {3, "organic produce=Honeycrisp Apples|Hass Avocados|Baby Carrots|Bell Peppers"},
    {4, "red wine=Cabernet Sauvignon|Pinot Noir|Merlot|Red Blend"},
    {4, "white wine=Chardonnay|Sauvignon Blanc|Pinot Grigio|Rose"},
    {4, "beer=IPA|Lager|Pale Ale|Stout|Hard Seltzer"},
    {4, "spirits=Vodka|Bourbon|Gin|Tequila"},
    {4, "sparkling cider=Sparkling Cider|Prosecco|Hard Cider"},
    {5, "asian cooking=Soy Sauce|Rice Noodles|Coconut Milk|Curry Paste"},
    {5, "mexican foods=Taco Shells|Refried Beans|Enchilada Sauce|Salsa Verde"},
    {5, "indian foods=Tikka Masala Sauce|Basmati Rice|Chutney|Dal"},
    {5, "italian specialties=Pesto|Arborio Rice|Sun Dried Tomatoes|Capers"},
    {5, "kosher foods=Matzo|Gefilte Fish|Challah|Horseradish"},
    {6, "water=Spring Water|Purified Water|Alkaline Water|Mineral Water"},
    {6, "sparkling water=Sparkling Water|Seltzer|Club Soda|Tonic Water"},
    {6, "juice=Orange Juice|Apple Juice|Lemonade|Cranberry Juice"},
    {6, "soda=Cola|Ginger Ale|Root Beer|Lemon Lime Soda"},
    {6, "coffee=Ground Coffee|Whole Bean Coffee|Cold Brew|Coffee Pods"},
    {6, "tea=Green Tea|Black Tea|Herbal Tea|Chai"},
    {6, "sports drinks=Sports Drink|Electrolyte Water|Coconut Water"},
    {6, "plant milks=Almond Milk|Oat Milk|Soy Milk|Coconut Milk Beverage"},
    {6, "energy drinks=Energy Drink|Energy Shot|Sparkling Energy Water"},
    {7, "dog food=Dry Dog Food|Wet Dog Food|Puppy Food"},
    {7, "cat food=Dry Cat Food|Wet Cat Food|Cat Litter"},
    {7, "pet treats=Dog Biscuits|Cat Treats|Dental Chews"},
    {8, "dry pasta=Spaghetti|Penne|Rotini|Elbow Macaroni|Linguine"},
    {8, "rice=Long Grain Rice|Brown Rice|Jasmine Rice|Wild Rice"},
    {8, "grains beans=Quinoa|Lentils|Black Beans|Couscous"},
    {8, "pasta sauce=Marinara Sauce|Alfredo Sauce|Vodka Sauce|Tomato Basil Sauce"},
    {8, "noodles=Egg Noodles|Ramen|Udon|Soba Noodles"},
    {9, "bulk nuts=Almonds|Cashews|Walnuts|Pecans"},
    {9, "bulk grains=Rolled Oats|Pearl Barley|Millet|Farro"},
    {9, "bulk dried fruit=Raisins|Dried Apricots|Dried Mango|Dates"},
    {10, "shampoo=Shampoo|Conditioner|Dry Shampoo"},
    {10, "soap body wash=Bar Soap|Body Wash|Hand Soap"},
    {10, "oral care=Toothpaste|Toothbrush|Mouthwash|Dental Floss"},
    {10, "vitamins=Multivitamin|Vitamin D3|Fish Oil|Probiotic"},
    {10, "cold flu=Cough Drops|Pain Reliever|Allergy Relief|Throat Spray"},
    {10, "skin care=Face Wash|Moisturizer|Sunscreen|Lip Balm"},
    {10, "deodorant=Deodorant|Antiperspirant|Body Spray"},
    {10, "first aid=Bandages|Antiseptic Wipes|Gauze Pads"},
    {10, "shaving=Razors|Shaving Cream|Aftershave"},
    {10, "feminine care=Tampons|Pads|Liners"},
    {10, "hair styling=Hair Gel|Hair Spray|Styling Cream"},
    {11, "chicken=Chicken Breasts|Chicken Thighs|Ground Chicken|Whole Chicken"},
    {11, "beef=Ground Beef|Ribeye Steak|Beef Stew Meat|Sirloin"},
    {11, "pork=Bacon|Pork Chops|Pork Tenderloin|Ham Steak"},
    {11, "fish=Atlantic Salmon|Cod Fillets|Tilapia|Tuna Steaks"},
    {11, "hot dogs sausages=Beef Franks|Italian Sausage|Breakfast Sausage|Bratwurst"},
    {11, "plant proteins=Veggie Burgers|Plant Based Sausage|Tempeh|Seitan"},
    {12, "baking ingredients=Baking Soda|Baking Powder|Vanilla Extract|Chocolate Chips"},
    {12, "spices=Black Pepper|Ground Cumin|Paprika|Cinnamon|Sea Salt"},
    {12, "oils vinegars=Extra Virgin Olive Oil|Canola Oil|Balsamic Vinegar|Apple Cider Vinegar"},
    {12, "condiments=Ketchup|Yellow Mustard|Mayonnaise|Hot Sauce"},
    {12, "honey syrups=Honey|Maple Syrup|Agave Nectar|Molasses"},
    {12, "nut butters=Peanut Butter|Almond Butter|Cashew Butter"},
    {12, "jams spreads=Strawberry Jam|Grape Jelly|Orange Marmalade|Hazelnut Spread"},
    {12, "salad dressings=Ranch Dressing|Italian Dressing|Caesar Dressing|Vinaigrette"},
    {12, "baking mixes=Brownie Mix|Cake Mix|Cornbread Mix|Pizza Dough Mix"},
    {12, "flour=All Purpose Flour|Bread Flour|Almond Flour|Whole Wheat Flour"},
    {12, "pickles olives=Dill Pickles|Kalamata Olives|Green Olives|Sweet Relish"},
    {13, "cold cereal=Corn Flakes|Honey Oat Cereal|Bran Flakes|Frosted Cereal"},
    {13, "oatmeal=Instant Oatmeal|Steel Cut Oats|Old Fashioned Oats"},
    {13, "granola=Granola|Muesli|Granola Clusters"},
    {13, "pancake mixes=Pancake Mix|Waffle Mix|Crepe Mix"},
    {13, "breakfast bars=Breakfast Bars|Toaster Pastries|Oat Bars"},
    {14, "canned vegetables=Green Beans|Corn Kernels|Sweet Peas|Beets"},
    {14, "canned fruit=Peaches|Pineapple Chunks|Mandarin Oranges|Fruit Cocktail"},
    {14, "canned fish=Chunk Light Tuna|Sardines|Pink Salmon|Anchovies"},
    {14, "soups broths=Chicken Broth|Tomato Soup|Chicken Noodle Soup|Vegetable Broth"},
    {14, "canned beans=Chickpeas|Kidney Beans|Pinto Beans|Cannellini Beans"},
    {14, "tomatoes sauces=Diced Tomatoes|Tomato Paste|Crushed Tomatoes|Tomato Sauce"},
    {15, "milk=Whole Milk|Reduced Fat Milk|Fat Free Milk|Chocolate Milk"},
    {15, "eggs=Large Brown Eggs|Large White Eggs|Egg Whites|Pasture Raised Eggs"},
    {15, "yogurt=Greek Yogurt|Whole Milk Yogurt|Yogurt Cups|Kefir"},
    {15, "butter=Salted Butter|Unsalted Butter|Butter Spread"},
    {15, "cream=Half and Half|Heavy Cream|Sour Cream|Coffee Creamer"},
    {15, "sliced cheese=Sliced Cheddar|Provolone Slices|Swiss Slices|American Cheese"},
    {15, "shredded cheese=Shredded Mozzarella|Shredded Cheddar|Mexican Blend|Parmesan"},
    {15, "specialty cheese=Brie|Goat Cheese|Feta Crumbles|Gouda"},
    {15, "cottage cheese=Cottage Cheese|Ricotta|Cream Cheese"},
    {15, "refrigerated dough=Biscuit Dough|Crescent Rolls|Cookie Dough"},
    {16, "dish soap=Dish Soap|Dishwasher Detergent|Rinse Aid"},
    {16, "laundry=Laundry Detergent|Fabric Softener|Stain Remover|Dryer Sheets"},
    {16, "paper towels=Paper Towels|Facial Tissues|Paper Napkins"},
    {16, "toilet paper=Toilet Paper|Flushable Wipes"},
    {16, "trash bags=Kitchen Trash Bags|Lawn Bags|Compost Bags"},
    {16, "cleaning sprays=All Purpose Cleaner|Glass Cleaner|Disinfecting Wipes|Bleach"},
    {16, "food storage=Zipper Bags|Aluminum Foil|Plastic Wrap|Parchment Paper"},
    {16, "air fresheners=Air Freshener|Scented Candle|Odor Eliminator"},
    {16, "kitchen supplies=Sponges|Scrub Brush|Dish Cloths|Rubber Gloves"},
    {17, "diapers wipes=Diapers|Baby Wipes|Training Pants"},
    {17, "baby food=Baby Food Pouch|Puffs|Teething Wafers|Baby Cereal"},
    {17, "baby formula=Infant Formula|Toddler Formula"},
    {17, "baby bath=Baby Shampoo|Baby Lotion|Diaper Cream"},
    {18, "chips=Potato Chips|Tortilla Chips|Kettle Chips|Veggie Chips"},
    {18, "crackers=Wheat Crackers|Cheese Crackers|Rice Crackers|Graham Crackers"},
    {18, "cookies=Chocolate Chip Cookies|Sandwich Cookies|Oatmeal Cookies|Shortbread"},
    {18, "candy=Gummy Bears|Licorice|Hard Candy|Sour Worms"},
    {18, "chocolate=Dark Chocolate Bar|Milk Chocolate Bar|Peanut Butter Cups|Truffles"},
    {18, "nuts seeds=Roasted Peanuts|Pistachios|Sunflower Seeds|Mixed Nuts"},
    {18, "popcorn=Popcorn|Kettle Corn|Microwave Popcorn"},
    {18, "trail mix=Trail Mix|Snack Mix|Yogurt Covered Raisins"},
    {18, "fruit snacks=Fruit Snacks|Fruit Leather|Applesauce Pouches"},
    {18, "protein bars=Protein Bar|Nut Bar|Energy Bites"},
    {19, "lunch meat=Sliced Turkey|Black Forest Ham|Salami|Roast Beef"},
    {19, "hummus dips=Hummus|Guacamole|Spinach Dip|Tzatziki"},
    {19, "prepared meals=Rotisserie Chicken|Pasta Salad|Chicken Salad|Sushi Roll"},
    {19, "fresh pasta=Cheese Ravioli|Tortellini|Fresh Fettuccine|Gnocchi"},
    {19, "tofu=Firm Tofu|Extra Firm Tofu|Silken Tofu|Baked Tofu"},
    {19, "salsa=Fresh Salsa|Pico de Gallo|Mango Salsa"},
    {20, "unsorted items=Assorted Item|Variety Pack|Sample Pack"},
};

static const char *const brands[] = {
    "Green Valley",    "Sunny Acres",      "Harbor Mill",   "Blue Ridge",   "Oak & Stone",
    "Little Farm",     "Northwind",        "Maple Lane",    "Golden Field", "Riverbend",
    "Bright Morning",  "Hilltop",          "Pure Meadow",   "Cedar Creek",  "Stonegate",
    "Wildflower",      "Copper Kettle",    "Silver Spoon",  "Redwood",      "True North",
    "Lakeside",        "Willow Brook",     "Summit Ridge",  "Fox Hollow",   "Pine Hill",
    "Orchard Gate",    "Sea Breeze",       "Prairie Sun",   "Mama Rosa's",  "Uncle Ted's",
    "Kindred Kitchen", "Daily Harvest Co", "Bramble & Bee", "Highland",     "Eastside Pantry",
};
static const char *const adjs[] = {
    "Classic",    "Original",    "Honey",       "Vanilla",     "Sea Salt",       "Garlic",
    "Lemon",      "Whole Wheat", "Low Fat",     "Unsweetened", "Spicy",          "Smoked",
    "Roasted",    "Sweet",       "Mild",        "Extra Sharp", "Strawberry",     "Chocolate",
    "Cinnamon",   "Maple",       "Coconut",     "Mixed Berry", "Peppermint",     "Lavender",
    "Unscented",  "Fresh",       "Hearty",      "Creamy",      "Crunchy",        "Lightly Salted",
    "Vegan",      "Gluten Free", "Family Size", "Mini",        "Wild",           "Golden",
    "Honeycrisp", "Zesty",       "Toasted",     "Homestyle",   "Reduced Sodium", "Triple Berry",
};
static const char *const sizes[] = {
    "8 oz",  "12 oz", "16 oz",       "32 oz",    "1 lb",   "2 lb", "3 lb",   "6 ct", "12 ct",
    "24 ct", "1 gal", "Half Gallon", "64 fl oz", "750 ml", "5 oz", "100 ct", "4 pk", "6 pk",
};
#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

const char *sy_dept_name(int d) {
    assert(d >= 0 && d < SY_N_DEPTS);
    return depts[d];
}

/* The aisle name is the part of the spec before '='; returned as a static copy per aisle. */
const char *sy_aisle_name(int a) {
    static char names[SY_N_AISLES][48];
    assert(a >= 0 && a < SY_N_AISLES);
    if (!names[a][0]) {
        const char *eq = strchr(aisles[a].spec, '=');
        size_t n = (size_t)(eq - aisles[a].spec);
        assert(eq && n < sizeof names[a]);
        memcpy(names[a], aisles[a].spec, n);
        names[a][n] = 0;
    }
    return names[a];
}

int sy_aisle_dept(int a) {
    assert(a >= 0 && a < SY_N_AISLES);
    return aisles[a].dept;
}

/* Returns a pointer to the k-th '|'-separated noun of aisle a and its length in *len. */
static const char *aisle_noun(int a, uint64_t h, size_t *len) {
    const char *s = strchr(aisles[a].spec, '=') + 1;
    int n = 1;
    for (const char *q = s; *q; q++) n += *q == '|';
    int k = (int)(h % (uint64_t)n);
    while (k--) s = strchr(s, '|') + 1;
    const char *e = strchr(s, '|');
    *len = e ? (size_t)(e - s) : strlen(s);
    return s;
}

static size_t put(char *buf, size_t cap, size_t at, const char *s, size_t n) {
    for (size_t i = 0; i < n && at + 1 < cap; i++) buf[at++] = s[i];
    buf[at < cap ? at : cap - 1] = 0;
    return at;
}
#define PUTS(s) (at = put(buf, cap, at, (s), strlen(s)))

/* Forms, from a hash of the product index (so the catalogue needs no seed):
 *   "[Brand ][Organic ][Adjective ]Noun[ Size]"     most products
 *   "[Brand ]Noun, Adjective[ Size]"                ~7%: the comma form
 *   "Brand \"Adjective\" Noun"                     ~1%: a quoted nickname
 *   "Noun 9\" Round"                                ~0.5% in bakery/household: inches */
size_t sy_product_name(int p, int aisle, char *buf, size_t cap) {
    assert(cap > 1);
    uint64_t h1 = nb_hash64(0x5EEDC0DEull ^ (uint64_t)p);
    uint64_t h2 = nb_hash64(h1);
    size_t nlen, at = 0;
    const char *noun = aisle_noun(aisle, h1 >> 40, &nlen);
    const char *brand = brands[h2 % NELEM(brands)];
    const char *adj = adjs[(h2 >> 8) % NELEM(adjs)];
    const char *size = sizes[(h2 >> 16) % NELEM(sizes)];
    unsigned form = (unsigned)(h1 % 1000), r = (unsigned)((h2 >> 24) % 100);
    int dept = aisles[aisle].dept;
    buf[0] = 0;
    if (form < 10) {
        PUTS(brand);
        PUTS(" \"");
        PUTS(adj);
        PUTS("\" ");
        at = put(buf, cap, at, noun, nlen);
    } else if (form < 15 && (dept == 2 || dept == 16)) {
        at = put(buf, cap, at, noun, nlen);
        PUTS((h2 >> 32) & 1 ? " 9\" Round" : " 12\" x 10 ft");
    } else if (form < 85) {
        if (r < 60) {
            PUTS(brand);
            PUTS(" ");
        }
        at = put(buf, cap, at, noun, nlen);
        PUTS(", ");
        PUTS(adj);
        if (r % 3 == 0) {
            PUTS(", ");
            PUTS(size);
        }
    } else {
        if (r < 70) {
            PUTS(brand);
            PUTS(" ");
        }
        if ((h2 >> 40) % 5 == 0) PUTS("Organic ");
        if ((h2 >> 44) % 10 < 7) {
            PUTS(adj);
            PUTS(" ");
        }
        at = put(buf, cap, at, noun, nlen);
        if ((h2 >> 48) % 2 == 0) {
            PUTS(" ");
            PUTS(size);
        }
    }
    return at;
}
